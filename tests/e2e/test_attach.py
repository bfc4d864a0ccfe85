#!/usr/bin/env python3
"""`leakdiff record --pid`: attaching to services that were started without
leakdiff, with exact counts where the service leaks on request, counts
consistent with the rate where it leaks on a timer, and the service
checked after detach: it still answers, has no thread more than before,
prints nothing it would not have printed, and exits 0 on SIGTERM. Also:
two attaches in a row and a recorder killed while attached (Python and
native), a target that exits while attached, and the failures (no
permission, no such process, a zombie, a process already traced, a static
binary, a process whose threads all wait on locks), each exit 125 with
its message and the target untouched."""
import os
import select
import shutil
import signal
import subprocess
import textwrap
import time

import harness
from harness import PYTHON, TempDirCase, leakdiff, load_snap

# A multi-threaded service: one thread leaks TickLeak objects at RATE a
# second, one sleeps in time.sleep (a C call), one waits in select; the
# main thread reads requests from stdin (a blocking read): "ping" keeps one
# Request (the leak on request) and answers "pong N", "tasks" answers the
# number of the process's threads, "hooks" whether the allocators of the
# MEM and OBJ domains are still those it started with, "exit" ends it with
# status 0. SIGTERM ends it with status 0 too.
SERVICE = textwrap.dedent("""\
    import ctypes, os, select, signal, sys, threading, time
    class Allocator(ctypes.Structure):
        _fields_ = [(n, ctypes.c_void_p) for n in ("ctx", "malloc", "calloc", "realloc", "free")]
    def allocators():
        out = []
        for domain in (1, 2):    # PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ
            a = Allocator()
            ctypes.pythonapi.PyMem_GetAllocator(domain, ctypes.byref(a))
            out.append((a.ctx, a.malloc, a.calloc, a.realloc, a.free))
        return out
    ORIGINAL = allocators()
    class TickLeak:
        def __init__(self, n):
            self.n = n
    class Request:
        def __init__(self, line):
            self.line = line
    TICKS, REQUESTS = [], []
    def ticker(rate):
        i = 0
        while True:
            TICKS.append(TickLeak(i))  # TICK-SITE
            i += 1
            time.sleep(1.0 / rate)
    def sleeper():
        while True:
            time.sleep(3600)
    def selector():
        r, w = os.pipe()
        while True:
            select.select([r], [], [], 3600)
    def handle(line):
        REQUESTS.append(Request(line))  # REQUEST-SITE
        return "pong %d" % len(REQUESTS)
    def main():
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        for f, a in ((ticker, (int(sys.argv[1]),)), (sleeper, ()), (selector, ())):
            threading.Thread(target=f, args=a, daemon=True).start()
        print("ready", flush=True)
        for line in sys.stdin:
            line = line.strip()
            if line == "ping":
                print(handle(line), flush=True)
            elif line == "tasks":
                print("tasks %d" % len(os.listdir("/proc/self/task")), flush=True)
            elif line == "hooks":
                print("hooks " + ("original" if allocators() == ORIGINAL else "replaced"), flush=True)
            elif line == "exit":
                sys.exit(0)
    main()
    """)

# The same service in C: a ticker thread, a thread in nanosleep, one in
# select, and the main thread reading requests from stdin.
NATIVE_SERVICE = textwrap.dedent("""\
    #include <pthread.h>
    #include <signal.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <sys/select.h>
    #include <unistd.h>
    #include <dirent.h>
    static volatile sig_atomic_t stop;
    static void on_term(int s) { (void)s; stop = 1; }
    struct node { struct node *next; char pad[40]; };
    static struct node *ticks, *requests;
    static int nrequests, rate;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    __attribute__((noinline)) static void tick_leak(void) {
        struct node *n = malloc(sizeof(*n));
        pthread_mutex_lock(&lock); n->next = ticks; ticks = n; pthread_mutex_unlock(&lock);
    }
    __attribute__((noinline)) static int handle_request(void) {
        struct node *n = malloc(sizeof(*n));
        pthread_mutex_lock(&lock); n->next = requests; requests = n; pthread_mutex_unlock(&lock);
        return ++nrequests;
    }
    static void *ticker(void *a) { (void)a; for (;;) { tick_leak(); usleep(1000000 / rate); } }
    static void *sleeper(void *a) { (void)a; for (;;) sleep(3600); }
    static void *selector(void *a) {
        (void)a; int p[2]; if (pipe(p)) return NULL;
        for (;;) { fd_set r; FD_ZERO(&r); FD_SET(p[0], &r); select(p[0] + 1, &r, NULL, NULL, NULL); }
    }
    static int tasks(void) {
        DIR *d = opendir("/proc/self/task"); int n = 0; struct dirent *e;
        while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
        closedir(d); return n;
    }
    int main(int argc, char **argv) {
        rate = atoi(argv[1]);
        struct sigaction sa; memset(&sa, 0, sizeof(sa)); sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        pthread_t t;
        pthread_create(&t, NULL, ticker, NULL);
        pthread_create(&t, NULL, sleeper, NULL);
        pthread_create(&t, NULL, selector, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("ready\\n");
        char line[64];
        while (!stop && fgets(line, sizeof(line), stdin)) {
            if (strncmp(line, "ping", 4) == 0) printf("pong %d\\n", handle_request());
            else if (strncmp(line, "tasks", 5) == 0) printf("tasks %d\\n", tasks());
            else if (strncmp(line, "exit", 4) == 0) return 0;
        }
        return 0;
    }
    """)

# The main thread sleeps in time.sleep (the GIL released), the only
# thread an agent can be loaded through; another thread, 0.2 s after
# "ready", keeps the GIL for 3 s while it waits in select (a C call made
# through ctypes.PyDLL, which does not release it), so a load started
# meanwhile waits that long for the GIL; then it sleeps too. SIGTERM ends
# the program with status 0.
GIL_HOG = textwrap.dedent("""\
    import ctypes, signal, sys, threading, time
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    libc = ctypes.PyDLL(None)
    tv = (ctypes.c_long * 2)(3, 0)
    def hog():
        time.sleep(0.2)
        libc.select(0, None, None, None, ctypes.byref(tv))
        time.sleep(3600)
    threading.Thread(target=hog, daemon=True).start()
    print("ready", flush=True)
    time.sleep(3600)
    """)

# A stand-in for the native agent's attach entry point, to check the
# recorder's half of the contract while the real one may not be built:
# it records the settings string it was given, opens the events FIFO as
# the contract says and says hello (attached), and refuses a second start
# with -EBUSY.
STAND_IN = textwrap.dedent("""\
    #include <errno.h>
    #include <fcntl.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>
    static int started;
    int ld_attach_start(const char *settings)
    {
        if (started)
            return -EBUSY;
        FILE *log = fopen(getenv("STAND_IN_LOG"), "w");
        if (log) { fprintf(log, "%s\\n", settings); fclose(log); }
        char out[512] = "";
        const char *p = strstr(settings, "out=");
        if (!p || sscanf(p + 4, "%511[^,]", out) != 1)
            return -EINVAL;
        int fd = open(out, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        char body[256], head[32];
        int n = snprintf(body, sizeof(body), "{\\"protocol\\":\\"leakdiff-pipe\\",\\"version\\":1,"
                         "\\"runtime\\":\\"native\\",\\"agent\\":\\"stand-in\\",\\"pid\\":%d,"
                         "\\"requests\\":true,\\"attached\\":true}", (int)getpid());
        int h = snprintf(head, sizeof(head), "hello %d\\n", n);
        if (write(fd, head, h) != h || write(fd, body, n) != n || write(fd, "\\n", 1) != 1)
            return -EIO;
        started = 1;
        return 0;
    }
    """)

RATE = 50
PINGS = 40


class Service:
    """A service started without leakdiff, talked to on its stdin/stdout."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, universal_newlines=True, env=env)
        self.lines = []
        assert self.read() == "ready", "the service did not start"

    @property
    def pid(self):
        return self.proc.pid

    def read(self, timeout=30):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("the service did not answer within %d s" % timeout)
        line = self.proc.stdout.readline().rstrip("\n")
        self.lines.append(line)
        return line

    def ask(self, request):
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return self.read()

    def tasks(self):
        return int(self.ask("tasks").split()[1])

    def terminate(self):
        """SIGTERM; returns (status, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, self.proc.stderr.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def wait_for(pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def libleakdiff():
    """The attachable native agent of the build tree, or None."""
    path = os.path.join(harness.build_root(), "agents", "native", "libleakdiff.so")
    return path if os.path.exists(path) else None


def has_attach_start(path):
    nm = shutil.which("nm")
    if not nm:
        return False
    r = harness.run([nm, "-D", "--defined-only", path])
    return r.returncode == 0 and " ld_attach_start" in r.stdout


class AttachCase(TempDirCase):
    def setUp(self):
        super().setUp()
        self.services = []

    def tearDown(self):
        for s in self.services:
            s.kill()
        super().tearDown()

    def python_service(self, python=PYTHON, env=None):
        prog = self.path("service.py")
        with open(prog, "w") as f:
            f.write(SERVICE)
        s = Service([python, prog, str(RATE)], env=harness.program_env(env))
        self.services.append(s)
        return s

    def start_record(self, pid, *args, env=None):
        """`leakdiff record --pid` in the background."""
        return subprocess.Popen([harness.LEAKDIFF, "record", "--pid", str(pid)] + [str(a) for a in args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                env=harness.program_env(env))

    def finish(self, rec, timeout=60):
        out, err = rec.communicate(timeout=timeout)
        return rec.returncode, err

    def attach_and_ping(self, service, out, env=None, pings=PINGS, duration="2s", python=True):
        """Attaches for `duration`, sending `pings` requests once the first
        snapshot is written; returns the recorder's stderr."""
        rec = self.start_record(service.pid, "--duration", duration, "-o", out, env=env)
        first = out[:-len(".snap")] + ".1.snap"
        self.assertTrue(wait_for(lambda: os.path.exists(first) or rec.poll() is not None),
                        "no snapshot at attach")
        if python:
            self.assertEqual(service.ask("hooks"), "hooks replaced")
        for i in range(pings):
            self.assertRegex(service.ask("ping"), r"^pong \d+$")
        status, err = self.finish(rec)
        self.assertEqual(status, 0, err)
        return err

    def check_after_detach(self, service, tasks_before, python=True):
        self.assertTrue(wait_for(lambda: service.tasks() == tasks_before, 10),
                        "the agent's threads did not end: %d tasks, %d before attach"
                        % (service.tasks(), tasks_before))
        if python:
            self.assertEqual(service.ask("hooks"), "hooks original")
        pongs = [ln for ln in service.lines if ln.startswith("pong")]
        self.assertEqual(service.ask("ping"), "pong %d" % (len(pongs) + 1))
        status, err = service.terminate()
        self.assertEqual(status, 0, err)
        self.assertEqual(err, "")
        for line in service.lines:
            self.assertRegex(line, r"^(ready|pong \d+|tasks \d+|hooks (original|replaced))$")

    def check_python_diff(self, out, pings):
        before, after = out[:-len(".snap")] + ".1.snap", out
        a, b = load_snap(before), load_snap(after)
        self.assertEqual(a["meta"]["trigger"], "attach")
        self.assertEqual(b["meta"]["trigger"], "detach")
        self.assertGreater(b["meta"]["attached"], 1e9)
        self.assertEqual(a["meta"]["attached"], b["meta"]["attached"])
        d = harness.diff_json(before, after)
        req = harness.find(d["types"], name="__main__.Request")
        self.assertIsNotNone(req, "no Request row")
        self.assertEqual(req["count_delta"], pings)
        # Every new Request allocated in handle(), after the attach.
        self.assertEqual(len(req["sites"]), 1, req["sites"])
        self.assertEqual(req["sites"][0]["frames"][0]["function"], "handle")
        self.assertEqual(req["sites"][0]["count_delta"], pings)
        sites = [s for s in d["sites"] if s["frames"][0]["function"] == "handle"]
        self.assertEqual(len(sites), 1, d["sites"])
        self.assertGreaterEqual(sites[0]["count_delta"], pings)
        # The ticker: RATE a second for the time between the snapshots, less
        # what sleeping past 1/RATE costs.
        tick = harness.find(d["types"], name="__main__.TickLeak")
        self.assertIsNotNone(tick)
        grew = tick["count_delta"]
        seconds = (self.stamp(b) - self.stamp(a))
        self.assertLessEqual(grew, RATE * seconds * 1.1 + 2)
        self.assertGreaterEqual(grew, RATE * seconds * 0.4)
        text = leakdiff("diff", before, after)
        self.assertIn("attached at", text.stdout)

    @staticmethod
    def stamp(doc):
        t = doc["meta"]["time"]
        return time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + t[19:-1])

    def attach_python(self, python, env=None):
        s = self.python_service(python, env)
        tasks = s.tasks()
        out = self.path("run.snap")
        err = self.attach_and_ping(s, out, env=env)
        self.assertIn("wrote %s.1.snap (snapshot 1, attach" % out[:-5], err)
        self.assertIn("detached from %d" % s.pid, err)
        self.check_python_diff(out, PINGS)
        self.check_after_detach(s, tasks)


class PythonAttach(AttachCase):
    def gil_hog_service(self):
        """GIL_HOG running, and the number of its threads before any agent
        came; returns once the hog's thread holds the GIL, for 3 s from then."""
        prog = self.path("hog.py")
        with open(prog, "w") as f:
            f.write(GIL_HOG)
        s = Service([harness.real_python(PYTHON), prog])
        self.services.append(s)
        tasks = len(os.listdir("/proc/%d/task" % s.pid))
        time.sleep(0.4)    # the hog holds the GIL from now on, for 3 s
        return s, tasks

    def test_pyenv_python(self):
        python = harness.real_python(PYTHON)
        self.attach_python(python)

    def test_system_python_in_venv(self):
        if not os.path.exists("/usr/bin/python3"):
            self.skipTest("no /usr/bin/python3")
        venv = self.path("venv")
        r = harness.run(["/usr/bin/python3", "-m", "venv", "--without-pip", venv])
        if r.returncode != 0:
            self.skipTest("python3 -m venv is unavailable: " + r.stderr.strip()[-200:])
        python = os.path.join(venv, "bin", "python3")
        env = {}
        if not harness.ext_built("_sampler", python):
            root, why = harness.agent_dir_for("/usr/bin/python3")
            if not root:
                self.skipTest(why)
            env["LEAKDIFF_AGENT_DIR"] = root
        self.attach_python(python, env)

    def test_twice_in_a_row(self):
        s = self.python_service()
        tasks = s.tasks()
        for n in (1, 2):
            out = self.path("run%d.snap" % n)
            self.attach_and_ping(s, out, pings=10, duration="1s")
            self.check_python_diff(out, 10)
        self.check_after_detach(s, tasks)

    def test_recorder_killed(self):
        s = self.python_service()
        tasks = s.tasks()
        rec = self.start_record(s.pid, "-o", self.path("run.snap"))
        self.assertTrue(wait_for(lambda: os.path.exists(self.path("run.1.snap"))))
        self.assertGreater(s.tasks(), tasks)     # the agent's request thread
        rec.kill()
        rec.communicate()
        self.check_after_detach(s, tasks)

    def test_recorder_killed_while_loading(self):
        # Killed while the agent's loader waits for the GIL in the borrowed
        # thread: that thread must finish the load, give the GIL back and
        # go back to its sleep on its own, and the agent must find nobody
        # to talk to and stay out.
        s, tasks = self.gil_hog_service()
        rec = self.start_record(s.pid, "-o", self.path("run.snap"))

        def traced():
            with open("/proc/%d/status" % s.pid) as f:
                return any(line.split() != ["TracerPid:", "0"] for line in f
                           if line.startswith("TracerPid:"))
        self.assertTrue(wait_for(traced, 2), "the recorder never stopped a thread")
        time.sleep(0.3)
        self.assertTrue(traced(), "the load did not wait for the GIL")
        rec.kill()
        rec.communicate()
        # The loader's thread runs once the hog lets the GIL go, finds no
        # recorder at the other end of the FIFOs and ends.
        self.assertTrue(wait_for(lambda: len(os.listdir("/proc/%d/task" % s.pid)) == tasks, 30),
                        "the loader's thread did not end")
        self.assertIsNone(s.proc.poll())
        self.assertFalse(traced())
        status, err = s.terminate()
        self.assertEqual(status, 0, err)
        self.assertEqual(err, "")

    def test_loader_timeout(self):
        # The GIL is not to be had within the time allowed: the recorder
        # gives up with 125, leaving the loader to finish on its own, and
        # the target neither stays traced nor keeps the GIL.
        s, tasks = self.gil_hog_service()
        r = leakdiff("record", "--pid", s.pid, "--attach-call-ms=500", "-o", self.path("run.snap"))
        self.assertEqual(r.returncode, 125)
        self.assertRegex(r.stderr, r"^leakdiff: cannot attach to %d: the loader did not get the GIL "
                         r"within 500 ms .*\n$" % s.pid)
        self.assertTrue(wait_for(lambda: len(os.listdir("/proc/%d/task" % s.pid)) == tasks, 30),
                        "the loader's thread did not end")
        with open("/proc/%d/status" % s.pid) as f:
            self.assertIn("TracerPid:\t0\n", f.read())
        status, err = s.terminate()
        self.assertEqual(status, 0, err)
        self.assertEqual(err, "")

    def test_target_exits(self):
        s = self.python_service()
        rec = self.start_record(s.pid, "--every", "200ms", "-o", self.path("run.snap"))
        self.assertTrue(wait_for(lambda: os.path.exists(self.path("run.2.snap"))))
        s.proc.stdin.write("exit\n")
        s.proc.stdin.flush()
        self.assertEqual(s.proc.wait(timeout=30), 0)
        status, err = self.finish(rec)
        self.assertEqual(status, 0, err)
        self.assertIn("process %d exited while attached" % s.pid, err)
        for name in ("run.1.snap", "run.2.snap"):
            self.assertEqual(load_snap(self.path(name))["meta"]["pid"], s.pid)
        # The agent's at-exit snapshot, when it got there before the end.
        if os.path.exists(self.path("run.snap")):
            self.assertEqual(load_snap(self.path("run.snap"))["meta"]["trigger"], "exit")

    def test_signal_detaches(self):
        s = self.python_service()
        tasks = s.tasks()
        rec = self.start_record(s.pid, "-o", self.path("run.snap"))
        self.assertTrue(wait_for(lambda: os.path.exists(self.path("run.1.snap"))))
        for i in range(5):
            s.ask("ping")
        rec.send_signal(signal.SIGUSR2)
        self.assertTrue(wait_for(lambda: os.path.exists(self.path("run.2.snap"))))
        rec.send_signal(signal.SIGTERM)
        status, err = self.finish(rec)
        self.assertEqual(status, 0, err)
        self.assertEqual(load_snap(self.path("run.snap"))["meta"]["trigger"], "detach")
        self.check_after_detach(s, tasks)


class NativeAttach(AttachCase):
    def native_service(self, name="service"):
        """The native service, started; skips while libleakdiff.so cannot attach."""
        lib = libleakdiff()
        if not lib or not has_attach_start(lib):
            self.skipTest("the native agent has no ld_attach_start yet (libleakdiff.so: %s)"
                          % (lib or "not built"))
        src, exe = self.path("service.c"), self.path(name)
        with open(src, "w") as f:
            f.write(NATIVE_SERVICE)
        r = harness.run(["cc", "-g", "-O0", "-pthread", "-o", exe, src])
        self.assertEqual(r.returncode, 0, r.stderr)
        s = Service([exe, str(RATE)])
        self.services.append(s)
        return s

    def check_native_pings(self, out, pings):
        d = harness.diff_json(out[:-len(".snap")] + ".1.snap", out)
        site = [x for x in d["sites"] if x["frames"][0]["function"] == "handle_request"]
        self.assertEqual(len(site), 1, d["sites"])
        self.assertEqual(site[0]["count_delta"], pings)

    def test_native_twice_in_a_row(self):
        s = self.native_service()
        tasks = s.tasks()
        for n in (1, 2):
            out = self.path("run%d.snap" % n)
            self.attach_and_ping(s, out, pings=10, duration="1s", python=False)
            self.check_native_pings(out, 10)
        self.check_after_detach(s, tasks, python=False)

    def test_native_recorder_killed(self):
        s = self.native_service()
        tasks = s.tasks()
        rec = self.start_record(s.pid, "-o", self.path("run.snap"))
        self.assertTrue(wait_for(lambda: os.path.exists(self.path("run.1.snap"))))
        rec.kill()
        rec.communicate()
        self.check_after_detach(s, tasks, python=False)

    def test_native_service(self):
        s = self.native_service()
        tasks = s.tasks()
        out = self.path("run.snap")
        self.attach_and_ping(s, out, python=False)
        d = harness.diff_json(self.path("run.1.snap"), out)
        site = [x for x in d["sites"] if x["frames"][0]["function"] == "handle_request"]
        self.assertEqual(len(site), 1, d["sites"])
        self.assertEqual(site[0]["count_delta"], PINGS)
        tick = [x for x in d["sites"] if x["frames"][0]["function"] == "tick_leak"]
        self.assertEqual(len(tick), 1, d["sites"])
        seconds = self.stamp(load_snap(out)) - self.stamp(load_snap(self.path("run.1.snap")))
        self.assertLessEqual(tick[0]["count_delta"], RATE * seconds * 1.1 + 2)
        self.assertGreaterEqual(tick[0]["count_delta"], RATE * seconds * 0.4)
        self.assertGreater(load_snap(out)["meta"]["attached"], 1e9)
        self.check_after_detach(s, tasks, python=False)


    def test_escapes_in_the_executable_name(self):
        # The target names its own executable: the recorder's messages escape it like any name.
        s = self.native_service("svc\x1b[31m\x07")
        r = leakdiff("record", "--pid", s.pid, "--duration=500ms", "-o", self.path("run.snap"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\x1b", r.stderr)
        self.assertNotIn("\x07", r.stderr)
        self.assertRegex(r.stderr, r"^leakdiff: attached to %d \(\S*/svc\\x1b\[31m\\x07, native agent\)\n"
                         % s.pid)
        self.assertEqual(s.ask("ping"), "pong 1")
        status, err = s.terminate()
        self.assertEqual(status, 0, err)

    def test_loader_with_a_stand_in_agent(self):
        # The recorder's side alone: dlopen of libleakdiff.so and
        # ld_attach_start(settings) in a running C program, through one of
        # its idle threads, with a stand-in agent that says hello only.
        agent_dir = self.path("agent")
        os.mkdir(agent_dir)
        lib = os.path.join(agent_dir, "libleakdiff.so")
        src = self.path("stand_in.c")
        with open(src, "w") as f:
            f.write(STAND_IN)
        r = harness.run(["cc", "-shared", "-fPIC", "-o", lib, src])
        self.assertEqual(r.returncode, 0, r.stderr)
        os.symlink(os.path.join(harness.build_root(), "agents", "native", "libleakdiff-preload.so"),
                   os.path.join(agent_dir, "libleakdiff-preload.so"))
        svc_src, exe = self.path("service.c"), self.path("service")
        with open(svc_src, "w") as f:
            f.write(NATIVE_SERVICE)
        r = harness.run(["cc", "-g", "-O0", "-pthread", "-o", exe, svc_src])
        self.assertEqual(r.returncode, 0, r.stderr)
        log = self.path("settings.log")
        s = Service([exe, str(RATE)], env=harness.program_env({"STAND_IN_LOG": log}))
        self.services.append(s)
        tasks = s.tasks()
        env = {"LEAKDIFF_AGENT_DIR": agent_dir}
        rec = self.start_record(s.pid, "--depth", "7", "-o", self.path("run.snap"), env=env)
        line = rec.stderr.readline()
        self.assertEqual(line, "leakdiff: attached to %d (%s, native agent)\n" % (s.pid, exe))
        with open(log) as f:
            settings = f.read().strip()
        self.assertRegex(settings, r"^out=/[^,=]*/leakdiff-attach\.[^,=/]+/events,in=/[^,=]*/leakdiff-attach\."
                         r"[^,=/]+/requests,depth=7$")
        fifo_dir = os.path.dirname(settings.split(",")[0][len("out="):])
        self.assertFalse(os.path.exists(fifo_dir), "the FIFO directory outlived the hello")
        with open("/proc/%d/maps" % s.pid) as f:
            self.assertIn(lib, f.read())
        # A second recorder meanwhile: the agent says it is busy.
        r = leakdiff("record", "--pid", s.pid, "-o", self.path("second.snap"), env=env)
        self.assertEqual(r.returncode, 125)
        self.assertEqual(r.stderr, "leakdiff: cannot attach to %d: the target already has a leakdiff "
                         "agent attached\n" % s.pid)
        # The stand-in never answers the detach snapshot: a second signal
        # ends the wait, which is said, with status 125.
        rec.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        rec.send_signal(signal.SIGTERM)
        status, err = self.finish(rec)
        self.assertEqual(status, 125, err)
        self.assertIn("detached from %d without its last snapshot" % s.pid, err)
        self.check_after_detach(s, tasks, python=False)


class Failures(AttachCase):
    def test_no_such_process(self):
        r = leakdiff("record", "--pid", "4194303", "-o", self.path("x.snap"))
        self.assertEqual(r.returncode, 125)
        self.assertEqual(r.stderr, "leakdiff: no process 4194303\n")

    def test_zombie(self):
        child = subprocess.Popen(["true"])
        self.assertTrue(wait_for(lambda: open("/proc/%d/stat" % child.pid).read().split(")")[1].split()[0] == "Z"))
        r = leakdiff("record", "--pid", child.pid, "-o", self.path("x.snap"))
        child.wait()
        self.assertEqual(r.returncode, 125)
        self.assertIn("is a zombie", r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1)

    def test_usage(self):
        r = leakdiff("record", "--pid", "1", "--", "true")
        self.assertEqual(r.returncode, 125)
        self.assertIn("--pid attaches to a running process; it takes no command", r.stderr)
        r = leakdiff("record", "--duration", "1s", "--", "true")
        self.assertEqual(r.returncode, 125)
        self.assertIn("--duration is for --pid", r.stderr)

    def test_already_traced(self):
        s = self.python_service()
        # A tracer of our own: ptrace(PTRACE_SEIZE) from a helper process.
        tracer = subprocess.Popen([PYTHON, "-c", textwrap.dedent("""\
            import ctypes, sys, time
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:
                sys.exit("seize failed: %d" % ctypes.get_errno())
            print("tracing", flush=True)
            time.sleep(60)
            """), str(s.pid)], stdout=subprocess.PIPE, universal_newlines=True)
        try:
            self.assertEqual(tracer.stdout.readline().strip(), "tracing")
            r = leakdiff("record", "--pid", s.pid, "-o", self.path("x.snap"))
            self.assertEqual(r.returncode, 125)
            self.assertIn("is already traced by process %d" % tracer.pid, r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1)
        finally:
            tracer.kill()
            tracer.wait()
        self.assertEqual(s.ask("ping"), "pong 1")

    def test_static_binary(self):
        src, exe = self.path("static.c"), self.path("static")
        with open(src, "w") as f:
            f.write("#include <unistd.h>\nint main(void) { for (;;) pause(); }\n")
        r = harness.run(["cc", "-static", "-o", exe, src])
        if r.returncode != 0:
            self.skipTest("no static C library: " + r.stderr[-200:])
        p = subprocess.Popen([exe])
        try:
            r = leakdiff("record", "--pid", p.pid, "-o", self.path("x.snap"))
            self.assertEqual(r.returncode, 125)
            self.assertIn("is statically linked", r.stderr)
            self.assertIsNone(p.poll())
        finally:
            p.kill()
            p.wait()

    def test_only_lock_waits(self):
        # Every thread blocked in futex (lock.acquire() without a timeout):
        # none may be borrowed, since from outside a futex wait cannot be
        # told apart from one inside malloc or the GIL; attaching is refused
        # and the process goes on, neither stopped nor traced.
        p = subprocess.Popen([PYTHON, "-c", textwrap.dedent("""\
            import signal, sys, threading
            signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
            gate = threading.Lock()
            gate.acquire()
            workers = [threading.Thread(target=gate.acquire, daemon=True) for _ in range(2)]
            for w in workers:
                w.start()
            print("ready", flush=True)
            gate.acquire()
            """)], stdout=subprocess.PIPE, universal_newlines=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "ready")
            tasks = "/proc/%d/task" % p.pid
            def syscall(tid):
                with open("%s/%s/syscall" % (tasks, tid)) as f:
                    return f.read().split()[0]
            self.assertTrue(wait_for(lambda: {syscall(t) for t in os.listdir(tasks)} == {"202"}),
                            "not every thread waits in futex")
            r = leakdiff("record", "--pid", p.pid, "-o", self.path("x.snap"))
            self.assertEqual(r.returncode, 125, r.stderr)
            self.assertRegex(r.stderr, r"^leakdiff: cannot attach to %d: cannot stop a thread of the target: "
                             r"no thread of it was waiting in a system call where the agent can safely "
                             r"be loaded .*\n$" % p.pid)
            self.assertFalse(os.path.exists(self.path("x.snap")))
            with open("/proc/%d/status" % p.pid) as f:
                status = dict(l.split(":", 1) for l in f.read().splitlines())
            self.assertEqual(status["TracerPid"].strip(), "0")
            self.assertEqual(status["State"].split()[0], "S")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()

    def unreachable_attach(self, service, fifo_parent, path_re, why):
        """Attaching fails at once (no 10 s wait for a hello that cannot come) with 125 and the
        path the target cannot reach; nothing is written or left behind, and the service runs on."""
        r = leakdiff("record", "--pid", service.pid, "-o", self.path("x.snap"), env={"TMPDIR": fifo_parent})
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertRegex(r.stderr, r"^leakdiff: cannot attach to %d: its user, .*, cannot reach (%s) \(%s\) "
                         r"from its root; .*\n$" % (service.pid, path_re, why))
        self.assertFalse(os.path.exists(self.path("x.snap")))
        self.assertEqual(os.listdir(fifo_parent), [], "the FIFO directory is removed")
        self.assertEqual(service.ask("ping"), "pong 1")
        with open("/proc/%d/status" % service.pid) as f:
            self.assertIn("TracerPid:\t0\n", f.read())
        status, err = service.terminate()
        self.assertEqual(status, 0, err)

    def test_target_user_cannot_reach_the_fifos(self):
        # A service of another user, and FIFOs in a directory only root can search.
        if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists("/usr/bin/python3"):
            self.skipTest("needs root, setpriv and /usr/bin/python3 to run a service as another user")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        if harness.run(prefix + ["true"]).returncode != 0:
            self.skipTest("setpriv cannot switch to nobody here")
        os.chmod(self.tmp, 0o755)
        prog = self.path("service.py")
        with open(prog, "w") as f:
            f.write(SERVICE)
        s = Service(prefix + ["/usr/bin/python3", prog, str(RATE)], env=harness.program_env())
        self.services.append(s)
        private = self.path("private")
        os.mkdir(private, 0o700)
        # The agent is tried first: where this tree is not readable by nobody, that is the path named.
        self.unreachable_attach(s, private, r"/\S+/leakdiff_attach\.py|%s/leakdiff-attach\.\w+/events" % private,
                                "Permission denied")

    def test_target_in_another_mount_namespace(self):
        # As in a container: the FIFO directory is not what the target sees at that path.
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare for a mount namespace")
        if harness.run(["unshare", "-m", "true"]).returncode != 0:
            self.skipTest("unshare -m is not allowed here")
        shared = self.path("fifos")
        os.mkdir(shared)
        prog = self.path("service.py")
        with open(prog, "w") as f:
            f.write(SERVICE)
        s = Service(["unshare", "-m", "--propagation", "private", "sh", "-c",
                     'mount -t tmpfs none "$0" && exec "$@"', shared,
                     harness.real_python(PYTHON), prog, str(RATE)], env=harness.program_env())
        self.services.append(s)
        self.unreachable_attach(s, shared, r"%s/leakdiff-attach\.\w+/events" % shared, "No such file or directory")

    def test_no_permission(self):
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            self.skipTest("needs root and setpriv to run leakdiff as another user")
        s = self.python_service()
        os.chmod(self.tmp, 0o777)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        if harness.run(prefix + ["true"]).returncode != 0:
            self.skipTest("setpriv cannot switch to nobody here")
        with harness.wrapped(prefix):
            r = leakdiff("record", "--pid", s.pid, "-o", self.path("x.snap"))
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertRegex(r.stderr, r"^leakdiff: no permission to trace %d: it belongs to root \(uid 0\) "
                         r"and leakdiff runs as .* without CAP_SYS_PTRACE; run leakdiff as that user "
                         r"or as root\n$" % s.pid)
        self.assertEqual(s.ask("ping"), "pong 1")
        status, err = s.terminate()
        self.assertEqual(status, 0, err)


if __name__ == "__main__":
    harness.main()
