//! The MCP server: every agent capability as MCP tools, over stdio or streamable HTTP (bearer-token
//! authenticated). One tools file per capability (`buyer_tools`, `compliance_tools`); `server` runs them.

pub mod buyer_tools;
pub mod compliance_tools;
pub mod http_auth;
pub mod server;
pub mod treasury_tools;
