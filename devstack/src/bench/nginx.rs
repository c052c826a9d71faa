//! The reverse proxy users would pick instead: Debian's nginx, started by the bench with a generated config (one
//! worker, on the server core, keep-alive to the upstream, no access log) in front of the same upstream.

use std::path::Path;
use std::process::{Child, Stdio};

use super::BenchError;
use super::cores::Cores;
use super::process::{free_port, wait_for_port};

pub struct Nginx {
    child: Child,
    pub url: String,
}

impl Nginx {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, port: u16, upstream: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 8192; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 keepalive_requests 1000000;\n\
         \x20 upstream api {{ server {upstream}; keepalive 128; }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      proxy_pass http://api;\n\
         \x20     proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    )
}

/// Starts nginx proxying `upstream` (`host:port`) and waits until it listens.
pub async fn start(cores: &Cores, dir: &Path, upstream: &str) -> Result<Nginx, BenchError> {
    let port = free_port()?;
    let file = dir.join("nginx.conf");
    std::fs::write(&file, config(dir, port, upstream)).map_err(super::setup)?;
    let child = cores
        .server_command(&super::tools::nginx_path())
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&file)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| BenchError::Setup(format!("starting nginx: {e}")))?;
    let mut nginx = Nginx {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let child = &mut nginx.child;
    wait_for_port(port, &mut || child.try_wait().ok().flatten().is_some()).await?;
    Ok(nginx)
}
