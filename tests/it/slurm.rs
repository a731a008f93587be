//! The README's Slurm recipe on a real one-node Slurm cluster: a private `munged`, `slurmctld`
//! and `slurmd` (as root, a generated `slurm.conf` in a temporary folder, free ports), a job array
//! with one `carload build … --batch-index $SLURM_ARRAY_TASK_ID` task per batch, one task
//! cancelled with `scancel` while it builds and resubmitted. Every batch must end built exactly
//! once, byte-identical to a local build, with no lock or temporary left.
//!
//! Needs Slurm and MUNGE (`.ci/slurm-setup.sh` installs them) and root, so the test is ignored
//! unless asked for (`cargo test -- --include-ignored`); asked for without them, it fails.

use crate::common;

use common::pseudo_random;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The programs the test cluster needs.
const PROGRAMS: [&str; 8] = ["sbatch", "squeue", "scancel", "scontrol", "sinfo", "slurmctld", "slurmd", "munged"];

/// `name` on `PATH` or in the sbin folders (often not on a plain user's `PATH`).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Absolute paths of [`PROGRAMS`].
struct Tools(BTreeMap<&'static str, PathBuf>);

/// The tools; fails the test, saying what is missing, when the cluster cannot run here.
fn tools() -> Tools {
    let found: BTreeMap<_, _> = PROGRAMS.iter().filter_map(|&p| find_program(p).map(|path| (p, path))).collect();
    let missing: Vec<&str> = PROGRAMS.iter().copied().filter(|p| !found.contains_key(p)).collect();
    assert!(missing.is_empty(), "{} not found on PATH or in /usr/sbin (run .ci/slurm-setup.sh)", missing.join(", "));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(root, "not root (the test cluster runs munged, slurmctld and slurmd as root)");
    Tools(found)
}

/// Two TCP ports nothing listens on right now (both bound at once, so they differ).
fn free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    (a.local_addr().unwrap().port(), b.local_addr().unwrap().port())
}

/// This host's short name, as Slurm's daemons compare it with `SlurmctldHost` and `NodeName`.
fn short_host_name() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    h.trim().split('.').next().unwrap_or("localhost").to_string()
}

/// The last `n` lines of a file (for failure messages).
fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => {
            let text = String::from_utf8_lossy(&b);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({e})"),
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Whether process `pid` exists and is not a zombie.
fn process_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// The state letter of process `pid` (`R`, `S`, `T`, …).
fn process_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A private one-node cluster in a temporary folder; every daemon is stopped and the folder
/// removed when it is dropped (also when the test fails).
struct Cluster {
    tools: Tools,
    dir: PathBuf,
    conf: PathBuf,
    node: String,
    munged: Option<Child>,
    slurmctld: Option<Child>,
    slurmd: Option<Child>,
    /// Declared last: removed after `drop` has stopped the daemons.
    _tmp: tempfile::TempDir,
}

impl Cluster {
    fn start(tools: Tools) -> Cluster {
        let tmp = tempfile::Builder::new().prefix("carload-slurm-").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let node = short_host_name();
        let mut c = Cluster {
            tools,
            conf: dir.join("slurm/slurm.conf"),
            dir,
            node,
            munged: None,
            slurmctld: None,
            slurmd: None,
            _tmp: tmp,
        };
        for sub in ["munge", "slurm/state", "slurm/spool", "work"] {
            std::fs::create_dir_all(c.dir.join(sub)).unwrap();
        }
        std::fs::set_permissions(c.dir.join("munge"), std::fs::Permissions::from_mode(0o700)).unwrap();

        // MUNGE with its own key and socket (the system's munged, if any, is left alone).
        let key = c.dir.join("munge/munge.key");
        let mut bytes = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut bytes).unwrap();
        std::fs::write(&key, &bytes).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        let socket = c.dir.join("munge/munge.socket");
        let m = |f: &str| c.dir.join("munge").join(f);
        let munged = Command::new(&c.tools.0["munged"])
            .args(["--foreground", "--force"])
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", m("munged.pid").display()))
            .arg(format!("--log-file={}", m("munged.log").display()))
            .arg(format!("--seed-file={}", m("munged.seed").display()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(m("munged.out")).unwrap())
            .stderr(std::fs::File::create(m("munged.err")).unwrap())
            .spawn()
            .unwrap();
        c.munged = Some(munged);
        c.wait_for("munged's socket", Duration::from_secs(30), |_| socket.exists().then_some(()));

        // slurm.conf: everything in the temporary folder, on free ports, as root, no cgroups.
        let s = |f: &str| c.dir.join("slurm").join(f).display().to_string();
        let (ctld_port, d_port) = free_ports();
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
        std::fs::write(s("plugstack.conf"), "").unwrap();
        let conf = format!(
            "ClusterName=carloadtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket}
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={ctld_pid}
SlurmdPidFile={d_pid}
SlurmctldLogFile={ctld_log}
SlurmdLogFile={d_log}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={plugstack}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MailProg=/bin/true
KillWait=10
MinJobAge=600
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=100 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
",
            node = c.node,
            socket = socket.display(),
            state = s("state"),
            spool = s("spool"),
            ctld_pid = s("slurmctld.pid"),
            d_pid = s("slurmd.pid"),
            ctld_log = s("slurmctld.log"),
            d_log = s("slurmd.log"),
            plugstack = s("plugstack.conf"),
        );
        std::fs::write(&c.conf, conf).unwrap();
        let daemon = |c: &Cluster, name: &str, args: &[&str]| {
            c.command(name)
                .args(args)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(s(&format!("{name}.out"))).unwrap())
                .stderr(Stdio::from(std::fs::File::create(s(&format!("{name}.err"))).unwrap()))
                .spawn()
                .unwrap()
        };
        c.slurmctld = Some(daemon(&c, "slurmctld", &["-D"]));
        c.slurmd = Some(daemon(&c, "slurmd", &["-D", "-N", &c.node.clone()]));
        let node = c.node.clone();
        c.wait_for("the node to be idle", Duration::from_secs(60), |c| {
            let o = c.run("sinfo", &["-h", "-n", &node, "-o", "%T"]);
            (o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "idle").then_some(())
        });
        c
    }

    /// A Slurm command against this cluster only (`SLURM_CONF`; no `SLURM_*`/`SBATCH_*` settings
    /// inherited from a job the test itself might run in).
    fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(&self.tools.0[name]);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["SLURM_", "SBATCH_", "SQUEUE_", "SINFO_", "SCANCEL_", "SCONTROL_"].iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    fn run(&self, name: &str, args: &[&str]) -> Output {
        self.command(name).args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs a client command that must succeed; returns its stdout.
    fn ok(&self, name: &str, args: &[&str]) -> String {
        let o = self.run(name, args);
        assert!(o.status.success(), "{name} {args:?}: {}\n{}\n{}", o.status, text(&o), self.logs());
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The daemons' recent logs, for failure messages.
    fn logs(&self) -> String {
        let mut s = String::new();
        for f in
            ["munge/munged.err", "slurm/slurmctld.log", "slurm/slurmctld.err", "slurm/slurmd.log", "slurm/slurmd.err"]
        {
            s += &format!("----- {f} (last lines)\n{}\n", tail(&self.dir.join(f), 40));
        }
        s
    }

    /// Polls `f` every 50 ms until it returns a value; panics with the daemons' logs after
    /// `limit`, or at once if a daemon exited.
    fn wait_for<T>(&mut self, what: &str, limit: Duration, f: impl FnMut(&Cluster) -> Option<T>) -> T {
        self.poll(what, limit, Duration::from_millis(50), f)
    }

    /// [`Cluster::wait_for`], polling every `every`.
    fn poll<T>(&mut self, what: &str, limit: Duration, every: Duration, mut f: impl FnMut(&Cluster) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            let mut exited = None;
            for (name, child) in
                [("munged", &mut self.munged), ("slurmctld", &mut self.slurmctld), ("slurmd", &mut self.slurmd)]
            {
                if let Some(Ok(Some(st))) = child.as_mut().map(|c| c.try_wait()) {
                    *child = None;
                    exited = Some((name, st));
                }
            }
            if let Some((name, st)) = exited {
                panic!("waiting for {what}: {name} exited ({st})\n{}", self.logs());
            }
            if start.elapsed() > limit {
                panic!("timed out after {limit:?} waiting for {what}\n{}", self.logs());
            }
            std::thread::sleep(every);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Cancel whatever still runs (jobs of a failed test), then stop the daemons.
        if self.slurmctld.is_some() {
            let _ = self.run("scancel", &["--user=root"]);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                let o = self.run("squeue", &["-h", "-o", "%i"]);
                if !o.status.success() || o.stdout.iter().all(u8::is_ascii_whitespace) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        for child in [self.slurmd.take(), self.slurmctld.take(), self.munged.take()].into_iter().flatten() {
            let mut child = child;
            // SAFETY: signalling our own child, which has not been waited for yet.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let start = Instant::now();
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if start.elapsed() > Duration::from_secs(15) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn carload() -> Command {
    Command::new(env!("CARGO_BIN_EXE_carload"))
}

/// `carload status SHIPMENT --out DIR --json`.
fn status(work: &Path, out: &str) -> serde_json::Value {
    let o = carload().current_dir(work).args(["status", "s.jsonl", "--out", out, "--json"]).output().unwrap();
    assert!(o.status.success(), "carload status: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `sbatch --parsable …`: the job ID.
fn sbatch(c: &Cluster, args: &[&str]) -> String {
    let id = c.ok("sbatch", &[&["--parsable"], args].concat());
    id.trim().split(';').next().unwrap().to_string()
}

/// `scontrol -o show job ID`: per job (array task) line, `JobState` and `ExitCode`, by
/// `ArrayTaskId` (or `-` for a job that is not part of an array).
fn job_states(c: &Cluster, id: &str) -> BTreeMap<String, (String, String)> {
    let out = c.ok("scontrol", &["-o", "show", "job", id]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace().find_map(|w| w.strip_prefix(k).map(str::to_string)).unwrap_or_else(|| "-".into())
            };
            (field("ArrayTaskId="), (field("JobState="), field("ExitCode=")))
        })
        .collect()
}

/// IDs of the batches a `carload build` output reports built (`<id> built: …`).
fn built_ids(log: &str) -> Vec<String> {
    log.lines().filter(|l| l.contains(" built:")).map(|l| l.split_whitespace().next().unwrap().to_string()).collect()
}

#[test]
#[ignore = "needs Slurm, MUNGE (.ci/slurm-setup.sh) and root"]
fn a_job_array_builds_every_batch_once_with_a_task_cancelled_and_resubmitted() {
    let tools = tools();
    let t0 = Instant::now();
    let mut c = Cluster::start(tools);
    eprintln!("slurm: cluster up in {:.2?}", t0.elapsed());

    // A shipment of 5 batches for 16 MiB pieces: one of ~16 MiB (big.bin and small files; the
    // one cancelled while it builds), four of ~9 MiB.
    let work = c.dir.join("work");
    let data = work.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("big.bin"), pseudo_random(15 << 20, 1)).unwrap();
    for i in 0..4 {
        std::fs::write(data.join(format!("m{i}.bin")), pseudo_random(9 << 20, 10 + i)).unwrap();
    }
    for i in 0..20 {
        std::fs::write(data.join(format!("s{i:02}")), pseudo_random(30_000 + i * 3_000, 100 + i as u64)).unwrap();
    }
    let o = carload()
        .current_dir(&work)
        .args(["plan", "data", "-o", "s.jsonl", "--piece-size", "16MiB", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "carload plan: {}", text(&o));
    let ship = work.join("s.jsonl");
    let s = carload::shipment::read_shipment(std::io::BufReader::new(std::fs::File::open(&ship).unwrap())).unwrap();
    let n = s.batches.len();
    assert!(n >= 4, "{n} batches");
    // The README's count: lines of the shipment file minus its header.
    assert_eq!(std::fs::read_to_string(&ship).unwrap().lines().count() - 1, n);
    let target = (0..n).max_by_key(|&i| s.batches[i].bytes()).unwrap();
    let target_id = s.batches[target].id.clone();
    let out = work.join("out");
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    // The README's recipe: one task per batch.
    let wrap = |index: &str| {
        format!(
            "'{}' build '{}' --out '{}' --batch-index {index}",
            env!("CARGO_BIN_EXE_carload"),
            ship.display(),
            out.display()
        )
    };
    let chdir = format!("--chdir={}", work.display());
    let t_submit = Instant::now();
    let job = sbatch(
        &c,
        &[
            &format!("--array=0-{}", n - 1),
            &chdir,
            &format!("--output={}/array-%A_%a.out", logs.display()),
            "--wrap",
            &wrap("$SLURM_ARRAY_TASK_ID"),
        ],
    );

    // Catch the target's builder while it builds: its lock names its PID. It is stopped
    // (SIGSTOP) at once so that the cancel surely lands mid-build however fast the build is;
    // Slurm sends a cancelled job SIGCONT and SIGTERM.
    let lock = out.join(format!("{target_id}.lock"));
    let what = format!("task {target}'s lock {}", lock.display());
    let task_log = logs.join(format!("array-{job}_{target}.out"));
    let pid: u32 = c.poll(&what, Duration::from_secs(120), Duration::from_millis(2), |_| {
        let Ok(content) = std::fs::read_to_string(&lock) else {
            // A task that ended without building (an error) says so in its output.
            let log = std::fs::read_to_string(&task_log).unwrap_or_default();
            assert!(!log.contains("batches selected"), "task {target} ended before it could be stopped:\n{log}");
            return None;
        };
        let pid = content.split_whitespace().find_map(|w| w.strip_prefix("pid="))?.parse().ok()?;
        // SAFETY: a signal to the builder process named by the lock.
        let stopped = unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) } == 0;
        assert!(stopped, "{target_id}'s builder (pid {pid}) exited before it could be stopped: make the batch bigger");
        Some(pid)
    });
    c.wait_for("the builder to stop", Duration::from_secs(10), |_| (process_state(pid) == Some('T')).then_some(()));
    assert!(
        !out.join(format!("{target_id}.json")).exists(),
        "{target_id} was built before its builder could be stopped: make the batch bigger"
    );
    let st = status(&work, "out");
    assert_eq!(st["status"][target]["state"], "building", "{st}");
    assert_eq!(st["status"][target]["pid"], pid, "{st}");

    // scancel the task while it builds; it must go away and leave neither lock nor temporaries.
    let task = format!("{job}_{target}");
    c.ok("scancel", &[&task]);
    c.wait_for(&format!("cancelled task {task} to leave the queue"), Duration::from_secs(60), |c| {
        let o = c.run("squeue", &["-h", "-j", &task, "-o", "%T"]);
        (!o.status.success() || o.stdout.iter().all(u8::is_ascii_whitespace)).then_some(())
    });
    c.wait_for(&format!("the cancelled builder (pid {pid}) to exit"), Duration::from_secs(60), |_| {
        (!process_running(pid)).then_some(())
    });
    assert_eq!(job_states(&c, &task)[&target.to_string()].0, "CANCELLED");
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&format!("{target_id}.")) || f.starts_with(&format!(".{target_id}.")))
        .collect();
    assert!(
        left.is_empty(),
        "the cancelled build left {left:?}\n{}",
        tail(&logs.join(format!("array-{task}.out")), 20)
    );

    // Resubmit that one index, as an operator would.
    let resub = sbatch(
        &c,
        &[&chdir, &format!("--output={}/resubmit-%j.out", logs.display()), "--wrap", &wrap(&target.to_string())],
    );
    let jobs = format!("{job},{resub}");
    c.wait_for("every task to finish", Duration::from_secs(600), |c| {
        let o = c.run("squeue", &["-h", "-r", "-j", &jobs, "-o", "%i"]);
        (o.status.success() && o.stdout.iter().all(u8::is_ascii_whitespace)).then_some(())
    });
    eprintln!("slurm: {n} tasks, one cancelled and resubmitted, done in {:.2?}", t_submit.elapsed());

    // Slurm's view: the cancelled task CANCELLED, every other task and the resubmission
    // COMPLETED with exit code 0.
    let states = job_states(&c, &job);
    assert_eq!(states.len(), n, "{states:?}");
    for (k, (state, code)) in &states {
        if *k == target.to_string() {
            assert_eq!(state, "CANCELLED", "task {k}");
        } else {
            assert_eq!((state.as_str(), code.as_str()), ("COMPLETED", "0:0"), "task {k}: {states:?}");
        }
    }
    let (state, code) = job_states(&c, &resub).into_values().next().unwrap();
    assert_eq!((state.as_str(), code.as_str()), ("COMPLETED", "0:0"), "resubmitted task");

    // The tasks' own words: every batch reported built exactly once, the cancelled batch by the
    // resubmitted task; nothing busy or failed.
    let mut built: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut all_logs = String::new();
    for e in std::fs::read_dir(&logs).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let log = std::fs::read_to_string(e.path()).unwrap();
        for id in built_ids(&log) {
            built.entry(id).or_default().push(name.clone());
        }
        all_logs += &format!("----- {name}\n{log}");
    }
    let ids: Vec<String> = s.batches.iter().map(|b| b.id.clone()).collect();
    assert_eq!(built.keys().cloned().collect::<Vec<_>>(), ids, "{all_logs}");
    for (id, by) in &built {
        assert_eq!(by.len(), 1, "{id} reported built by {by:?}\n{all_logs}");
    }
    assert_eq!(built[&target_id], vec![format!("resubmit-{resub}.out")], "{all_logs}");
    assert!(!all_logs.contains(" busy:") && !all_logs.contains("FAILED"), "{all_logs}");

    // The output folder: exactly the batches' outputs and the drive manifest (no lock,
    // temporary or aside file), the same bytes as a local build, and `carload status` agrees.
    let names: BTreeSet<String> =
        std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let want: BTreeSet<String> =
        ids.iter().flat_map(|id| ["car", "car.manifest", "json"].map(|ext| format!("{id}.{ext}"))).collect();
    let drive: BTreeSet<String> =
        ["carload-drive.json", "README.txt", ".carload-drive.lck"].map(String::from).into_iter().collect();
    assert_eq!(names, want.union(&drive).cloned().collect::<BTreeSet<_>>());
    // The tasks, each on its own, kept the drive manifest: it lists every batch.
    let m = carload::shipment::drive::read_manifest(&out).unwrap().expect("a drive manifest");
    assert_eq!(m.cars.iter().map(|c| c.batch.clone()).collect::<Vec<_>>(), ids, "{all_logs}");
    let o = carload().current_dir(&work).args(["build", "s.jsonl", "--out", "ref", "-q"]).output().unwrap();
    assert!(o.status.success(), "local build: {}", text(&o));
    for f in &want {
        let (a, b) = (std::fs::read(out.join(f)).unwrap(), std::fs::read(work.join("ref").join(f)).unwrap());
        assert!(a == b, "{f} built by Slurm differs from the local build");
    }
    let st = status(&work, "out");
    assert_eq!(
        (&st["built"], &st["building"], &st["stale_locks"], &st["problems"]),
        (&serde_json::json!(n), &serde_json::json!(0), &serde_json::json!(0), &serde_json::json!(0)),
        "{st}"
    );
    drop(c);
    eprintln!("slurm: whole test {:.2?}", t0.elapsed());
}
