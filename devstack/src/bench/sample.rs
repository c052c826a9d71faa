//! What one measured round gives ([`Sample`]: completed operations, failures, elapsed time, p50/p99), a series
//! of rounds ([`Series`]: median and min–max), and the report that prints every series beside its baseline
//! from the same run, as text or JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One round of one series.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Operations that got the expected answer.
    pub ok: u64,
    /// Operations that got anything else (or no answer).
    pub failed: u64,
    pub elapsed_us: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl Sample {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / (self.elapsed_us.max(1) as f64 / 1e6)
    }

    pub fn from_latencies(mut latencies_us: Vec<u64>, failed: u64, elapsed: Duration) -> Self {
        latencies_us.sort_unstable();
        Sample {
            ok: latencies_us.len() as u64,
            failed,
            elapsed_us: elapsed.as_micros() as u64,
            p50_us: percentile(&latencies_us, 0.50),
            p99_us: percentile(&latencies_us, 0.99),
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Every round of one series.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub name: String,
    pub samples: Vec<Sample>,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

impl Series {
    pub fn new(name: impl Into<String>) -> Self {
        Series {
            name: name.into(),
            samples: Vec::new(),
        }
    }

    pub fn rates(&self) -> Vec<f64> {
        self.samples.iter().map(Sample::per_second).collect()
    }

    pub fn median_rate(&self) -> f64 {
        median(self.rates())
    }

    pub fn median_p50_ms(&self) -> f64 {
        median(self.samples.iter().map(|s| s.p50_us as f64 / 1e3).collect())
    }

    pub fn median_p99_ms(&self) -> f64 {
        median(self.samples.iter().map(|s| s.p99_us as f64 / 1e3).collect())
    }

    pub fn failures(&self) -> u64 {
        self.samples.iter().map(|s| s.failed).sum()
    }

    fn range(&self) -> (f64, f64) {
        let rates = self.rates();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        (if min.is_finite() { min } else { 0.0 }, max)
    }
}

/// A value measured once (RSS, for one).
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// How the run was set up (cores, rounds, latency), one line each.
    pub setup: Vec<String>,
    pub series: Vec<Series>,
    /// (series, baseline) pairs whose ratio is printed; both are series of this report.
    pub comparisons: Vec<(String, String)>,
    pub readings: Vec<Reading>,
}

/// A series' ratio to its baseline: throughput, and the median p50 and p99 side by side.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub series: String,
    pub baseline: String,
    pub throughput: f64,
    pub p50: f64,
    pub p99: f64,
}

impl Report {
    pub fn add(&mut self, series: Series) {
        self.series.push(series);
    }

    pub fn compare(&mut self, series: &str, baseline: &str) {
        self.comparisons.push((series.to_owned(), baseline.to_owned()));
    }

    pub fn find(&self, name: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.name == name)
    }

    pub fn ratios(&self) -> Vec<Ratio> {
        self.comparisons
            .iter()
            .filter_map(|(series, baseline)| {
                let (s, baseline) = (self.find(series)?, self.find(baseline)?);
                Some(Ratio {
                    series: s.name.clone(),
                    baseline: baseline.name.clone(),
                    throughput: s.median_rate() / baseline.median_rate().max(1e-9),
                    p50: s.median_p50_ms() / baseline.median_p50_ms().max(1e-9),
                    p99: s.median_p99_ms() / baseline.median_p99_ms().max(1e-9),
                })
            })
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let series: Vec<_> = self
            .series
            .iter()
            .map(|s| {
                let (min, max) = s.range();
                serde_json::json!({
                    "name": s.name,
                    "median_per_second": s.median_rate(),
                    "min_per_second": min,
                    "max_per_second": max,
                    "median_p50_ms": s.median_p50_ms(),
                    "median_p99_ms": s.median_p99_ms(),
                    "failures": s.failures(),
                    "rounds": s.samples,
                })
            })
            .collect();
        serde_json::json!({
            "setup": self.setup,
            "series": series,
            "ratios": self.ratios(),
            "readings": self.readings,
        })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.setup {
            writeln!(f, "# {line}")?;
        }
        writeln!(
            f,
            "{:<44} {:>10} {:>19} {:>9} {:>9} {:>7}",
            "series", "median/s", "min–max/s", "p50 ms", "p99 ms", "failed"
        )?;
        for s in &self.series {
            let (min, max) = s.range();
            writeln!(
                f,
                "{:<44} {:>10.0} {:>9.0}–{:<9.0} {:>9.2} {:>9.2} {:>7}",
                s.name,
                s.median_rate(),
                min,
                max,
                s.median_p50_ms(),
                s.median_p99_ms(),
                s.failures()
            )?;
        }
        writeln!(f, "ratios (medians; throughput, then p50 and p99 latency):")?;
        for r in self.ratios() {
            writeln!(
                f,
                "  {:<44} / {:<36} {:>6.2}x   p50 {:>6.2}x   p99 {:>6.2}x",
                r.series, r.baseline, r.throughput, r.p50, r.p99
            )?;
        }
        for r in &self.readings {
            writeln!(f, "{:<44} {:>10.1} {}", r.name, r.value, r.unit)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ok: u64, elapsed_ms: u64) -> Sample {
        Sample {
            ok,
            failed: 0,
            elapsed_us: elapsed_ms * 1000,
            p50_us: 1000,
            p99_us: 2000,
        }
    }

    #[test]
    fn medians_ranges_and_ratios_come_from_the_rounds() {
        let mut a = Series::new("a");
        a.samples = vec![sample(100, 1000), sample(300, 1000), sample(200, 1000)];
        let mut b = Series::new("b");
        b.samples = vec![sample(400, 1000), sample(400, 2000)];
        assert_eq!(a.median_rate(), 200.0);
        assert_eq!(a.range(), (100.0, 300.0));
        assert_eq!(b.median_rate(), 300.0);
        let mut report = Report::default();
        report.add(a);
        report.add(b);
        report.compare("b", "a");
        let ratios = report.ratios();
        assert_eq!(ratios.len(), 1);
        assert!((ratios[0].throughput - 1.5).abs() < 1e-9);
        assert!(report.to_string().contains("1.50x"));
    }

    #[test]
    fn percentiles_of_latencies() {
        let s = Sample::from_latencies((1..=100).collect(), 3, Duration::from_secs(2));
        assert_eq!((s.ok, s.failed, s.p50_us, s.p99_us), (100, 3, 51, 99));
        assert_eq!(s.per_second(), 50.0);
    }
}
