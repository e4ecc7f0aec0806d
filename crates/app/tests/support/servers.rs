//! Private servers a test starts for itself: a second MariaDB server in a fresh data
//! directory and a three-master Redis Cluster. Shared by `scale_out` (through
//! `support`) and the API suite's `mysql-cluster` backend (included by path).

#![allow(dead_code)] // each test crate uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process stopped (SIGKILL) when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    /// For a guard kept in a static (never dropped): a shell polls this test process and
    /// kills the child once the process is gone, then removes `dir`.
    pub fn killed_after_this_process(&self, dir: &Path) {
        let script = format!(
            "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -9 {child} 2>/dev/null; \
             sleep 1; rm -rf '{dir}'",
            me = std::process::id(),
            child = self.0.id(),
            dir = dir.display(),
        );
        // Not waited for: it runs until this process is gone.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watchdog shell starts");
    }
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::File::create(path).expect("log file")
}

/// A private MariaDB server on `port` in a fresh data directory (no grant tables: root
/// with no password from anywhere), up when this returns.
pub async fn private_mariadb(dir: &Path, port: u16) -> Guard {
    let data = dir.join("data");
    let out = Command::new("mariadb-install-db")
        .arg(format!("--datadir={}", data.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .output()
        .expect("mariadb-install-db runs (is MariaDB installed?)");
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = Command::new("/usr/sbin/mariadbd")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg("--skip-grant-tables")
        .arg("--innodb-buffer-pool-size=64M")
        .arg("--max-connections=500")
        .arg("--user=root")
        .stdout(Stdio::null())
        .stderr(log_file(&dir.join("mariadbd.log")))
        .spawn()
        .expect("mariadbd starts");
    let mut guard = Guard(child);
    let url = format!("mysql://root@127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::MySqlConnection::connect(&url).await {
            let _ = c.ping().await;
            return guard;
        }
        if let Some(status) = guard.0.try_wait().expect("mariadbd status") {
            panic!(
                "mariadbd on {port} exited with {status}:\n{}",
                std::fs::read_to_string(dir.join("mariadbd.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "mariadbd on {port} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A Redis Cluster of three masters on `ports`, every slot served, when this returns.
pub async fn private_cluster(dir: &Path, ports: [u16; 3]) -> Vec<Guard> {
    let mut nodes = Vec::new();
    for port in ports {
        let node_dir: PathBuf = dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("node dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .stdout(log_file(&node_dir.join("redis.log")))
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (is Redis installed?)");
        nodes.push(Guard(child));
    }
    let cli = |port: u16, args: &[&str]| {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs")
    };
    for port in ports {
        let deadline = Instant::now() + Duration::from_secs(20);
        while String::from_utf8_lossy(&cli(port, &["ping"]).stdout).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis on {port} did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli --cluster create runs");
    assert!(
        out.status.success(),
        "redis-cli --cluster create failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for port in ports {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !String::from_utf8_lossy(&cli(port, &["cluster", "info"]).stdout)
            .contains("cluster_state:ok")
        {
            assert!(Instant::now() < deadline, "cluster node {port} not ok");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    nodes
}

/// Appends the guard's pid to `pid_file`, for [`kill_recorded`] in a later run.
pub fn record_pid(pid_file: &Path, guard: &Guard) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pid_file)
        .expect("pid file");
    writeln!(f, "{}", guard.0.id()).expect("pid recorded");
}

/// Kills the MariaDB and Redis servers an earlier run recorded in `pid_file` and left
/// running (its watchdog killed, say), then removes the file. A recorded pid now used
/// by another program is left alone.
pub fn kill_recorded(pid_file: &Path) {
    let pids = std::fs::read_to_string(pid_file).unwrap_or_default();
    for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if matches!(comm.trim(), "mariadbd" | "redis-server") {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let _ = std::fs::remove_file(pid_file);
}
