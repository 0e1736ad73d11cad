#!/usr/bin/env python3
"""hadb's MySQL member supervisor.

One process per member, the container's entrypoint. It
  * initialises the data directory on first start and creates the local accounts (not binlogged); both steps
    are redone on the next start if a crash interrupted them (marker files in the data volume);
  * runs mysqld and exits with it (the container's restart policy brings the member back); any unexpected
    error of its own stops mysqld and exits 1, so the member is restarted rather than left half-supervised;
  * assembles Group Replication by itself, by the rule in assembly.py: join when any peer is in a group;
    otherwise, once every member answers and none is in a group, the member with the most advanced GTID set
    (lowest ordinal on a tie) bootstraps and the others join it. A member that cannot see every peer never
    bootstraps, so no second group with the same name can appear;
  * creates the application schema from whichever member can write it (the PRIMARY; in multi-primary mode
    the ONLINE member with the lowest ordinal), once, recorded by a marker row;
  * answers role checks over HTTP for HAProxy: /primary, /replica?lag=N, and /health, /ready, /member.
Configuration: /etc/hadb/member.json and /etc/hadb/my.cnf, rendered by the MySqlCluster component.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pymysql

import assembly

CONFIG_FILE = "/etc/hadb/member.json"
DEFAULTS = "/etc/hadb/my.cnf"
VOLUME = "/var/lib/mysql"
DATADIR = "/var/lib/mysql/data"
# The group as this member last saw it ONLINE, kept with its data: the members the rule must hear from.
LAST_GROUP_FILE = os.path.join(VOLUME, ".hadb-group.json")
SOCKET = "/run/mysqld/mysqld.sock"
# Present only while `mysqld --initialize` runs: found at start, the last initialisation was cut short.
INITIALIZING = os.path.join(VOLUME, ".hadb-initializing")
# Written once the local accounts exist; outside the data directory, so a clone does not remove it.
ACCOUNTS_DONE = os.path.join(VOLUME, ".hadb-accounts-done")
# The binlogged record that the application schema was created: replicated, so any later PRIMARY sees it.
MARKER_SCHEMA = "hadb"
MARKER_TABLE = "application_schema"
ASSEMBLE_INTERVAL = 1.0
RESTART_REQUESTED = 16
SUPERVISOR_FAILED = 1
MYSQLD_STOP_TIMEOUT = 120
ER_ACCESS_DENIED = 1045

# member.json: {member, members (addresses in member order), self (this member's address), port, agentPort,
# clusterRanges, users}, plus application.json beside it. Loaded by main(), so tests can import this module.
CONFIG = {}


def load_config(path=CONFIG_FILE):
    with open(path) as f:
        CONFIG.clear()
        CONFIG.update(json.load(f))
    # The application's database, account and schema come in their own file, which changes without a new
    # member (a rotated password is set by the configurator): {database, bootstrapSql, users: {app}}.
    application = os.path.join(os.path.dirname(path), "application.json")
    if os.path.exists(application):
        with open(application) as f:
            app = json.load(f)
        CONFIG["users"] = {**CONFIG.get("users", {}), **app.pop("users", {})}
        CONFIG.update(app)


def log(message):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [hadb-member {CONFIG.get('member', '?')}] {message}", flush=True)


def quote(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def ident(name):
    return "`" + name.replace("`", "``") + "`"


def users():
    return CONFIG["users"]


def local(password=None, database=None, multi=False):
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS if multi else 0
    return pymysql.connect(unix_socket=SOCKET, user="root", password=users()["admin"]["password"] if password is None else password,
                           database=database, autocommit=True, connect_timeout=2, read_timeout=30, client_flag=flags)


def peer(host):
    monitor = users()["monitor"]
    return pymysql.connect(host=host, port=CONFIG["port"], user=monitor["name"], password=monitor["password"],
                           autocommit=True, connect_timeout=1, read_timeout=2)


def query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def close_quietly(conn):
    try:
        conn.close()
    except Exception:  # closing a broken connection has nothing left to report
        pass


class Retry(Exception):
    """An expected condition the next assembly step may clear: logged, then retried like a MySQL error."""


# --- data directory and local accounts -------------------------------------------------------------------

def write_marker(path):
    """Durably, so a marker never exists for work that a crash could still undo."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(os.path.dirname(path))


def remove_marker(path):
    if os.path.exists(path):
        os.remove(path)
        fsync_directory(os.path.dirname(path))


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def empty_directory(path):
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.remove(full)


def prepare_data_directory():
    """Initialises a new data directory. One whose initialisation was cut short is emptied and initialised
    again: nothing but --initialize ever wrote to it."""
    if os.path.exists(INITIALIZING):
        log("the last initialisation of the data directory was interrupted: emptying it and initialising again")
        if os.path.isdir(DATADIR):
            empty_directory(DATADIR)
    elif os.path.isdir(os.path.join(DATADIR, "mysql")):
        return
    else:
        log("initialising a new data directory")
    # An accounts marker belongs to the data directory it was written for.
    remove_marker(ACCOUNTS_DONE)
    write_marker(INITIALIZING)
    subprocess.run(["mysqld", f"--defaults-file={DEFAULTS}", "--initialize-insecure"], check=True)
    remove_marker(INITIALIZING)
    log("data directory initialised")


def accounts_done():
    return os.path.exists(ACCOUNTS_DONE)


def root_connection():
    """Root over the socket while the accounts are not done: root has the configured password if the last
    attempt got past setting it, and none (as --initialize-insecure left it) if it did not."""
    try:
        return local()
    except pymysql.MySQLError as err:
        if not err.args or err.args[0] != ER_ACCESS_DENIED:
            raise
    return local(password="")


def account_statements():
    """Idempotent: every statement can run again after a crash part-way through."""
    a, r, m = users()["admin"], users()["replication"], users()["monitor"]
    grants = [
        (a, "ALL ON *.*", " WITH GRANT OPTION"),
        (r, "REPLICATION SLAVE, BACKUP_ADMIN, CLONE_ADMIN, CONNECTION_ADMIN, GROUP_REPLICATION_STREAM ON *.*", ""),
        (m, "SELECT ON performance_schema.*", ""),
    ]
    statements = [f"ALTER USER 'root'@'localhost' IDENTIFIED BY {quote(a['password'])}"]
    for cidr in CONFIG["clusterRanges"]:
        for user, privileges, option in grants:
            account = f"{quote(user['name'])}@{quote(cidr)}"
            statements += [
                f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {quote(user['password'])}",
                f"ALTER USER {account} IDENTIFIED BY {quote(user['password'])}",
                f"GRANT {privileges} TO {account}{option}",
            ]
    return statements


def create_local_accounts():
    """Accounts created on each member with the binary log off, so they add no GTIDs and never conflict.
    One account per range the cluster's members and proxies connect from. The marker is written last."""
    conn = root_connection()
    try:
        query(conn, "SET SESSION sql_log_bin = 0")
        for sql in account_statements():
            query(conn, sql)
    finally:
        close_quietly(conn)
    write_marker(ACCOUNTS_DONE)
    log("local accounts created")


def wait_for_socket(timeout=120):
    connect = local if accounts_done() else root_connection
    deadline = time.time() + timeout
    while time.time() < deadline:
        code = MYSQLD.poll()
        if code is not None:
            raise SystemExit(code)
        try:
            connect().close()
            return
        except pymysql.MySQLError:
            time.sleep(0.2)
    raise RuntimeError(f"mysqld did not accept connections within {timeout} s")


# --- group state -----------------------------------------------------------------------------------------

def own_state(conn):
    rows = query(conn, "SELECT MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members WHERE MEMBER_ID = @@server_uuid")
    return tuple(rows[0]) if rows else ("OFFLINE", "")


def own_gtids(conn):
    return query(conn, "SELECT @@GLOBAL.gtid_executed")[0][0].replace("\n", "")


def peer_view(host):
    """(in_group, gtid_executed) of a peer, or None when it does not answer."""
    try:
        conn = peer(host)
    except (pymysql.MySQLError, OSError):
        return None
    try:
        state = own_state(conn)[0]
        return state in assembly.IN_GROUP, own_gtids(conn)
    except (pymysql.MySQLError, OSError):
        return None
    finally:
        close_quietly(conn)


# Set while group_replication_bootstrap_group may be ON: from before a bootstrap until it is seen OFF again.
BOOTSTRAP_FLAG_UNSURE = threading.Event()


def ensure_bootstrap_off(conn):
    """Left ON, the next START GROUP_REPLICATION would found a second group with the same name."""
    query(conn, "SET GLOBAL group_replication_bootstrap_group = OFF")
    value = query(conn, "SELECT @@GLOBAL.group_replication_bootstrap_group")[0][0]
    if int(value) != 0:
        raise Retry(f"group_replication_bootstrap_group is still {value} after setting it OFF")
    BOOTSTRAP_FLAG_UNSURE.clear()


def reset_bootstrap_flag():
    """On a connection of its own: the one that set the flag may have broken mid-statement."""
    conn = local()
    try:
        ensure_bootstrap_off(conn)
    finally:
        close_quietly(conn)


def start_statement():
    r = users()["replication"]
    return f"START GROUP_REPLICATION USER = {quote(r['name'])}, PASSWORD = {quote(r['password'])}"


def join_group():
    conn = local()
    try:
        ensure_bootstrap_off(conn)
        query(conn, start_statement())
    finally:
        close_quietly(conn)


def bootstrap_group():
    BOOTSTRAP_FLAG_UNSURE.set()
    conn = local()
    try:
        query(conn, "SET GLOBAL group_replication_bootstrap_group = ON")
        query(conn, start_statement())
    finally:
        close_quietly(conn)
        # Whether START succeeded, failed or timed out: OFF again before anything else happens. If this fails
        # too, the flag stays unsure and the next step resets it first.
        reset_bootstrap_flag()


def gtid_subset(conn):
    return lambda a, b: int(query(conn, "SELECT GTID_SUBSET(%s, %s)", (a, b))[0][0]) == 1


# --- the application schema ------------------------------------------------------------------------------

# Whether this process saw the application schema recorded as created; then it never looks again.
SCHEMA_DONE = threading.Event()
SCHEMA_RETRY = {"at": 0.0, "delay": 0.0}


def schema_statements():
    app, db = users()["app"], CONFIG["database"]
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {ident(MARKER_SCHEMA)}",
        f"CREATE TABLE IF NOT EXISTS {ident(MARKER_SCHEMA)}.{ident(MARKER_TABLE)} "
        "(database_name VARCHAR(64) NOT NULL PRIMARY KEY, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        f"CREATE DATABASE IF NOT EXISTS {ident(db)}",
    ]
    for cidr in CONFIG["clusterRanges"]:
        account = f"{quote(app['name'])}@{quote(cidr)}"
        statements += [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {quote(app['password'])}",
            f"ALTER USER {account} IDENTIFIED BY {quote(app['password'])}",
            f"GRANT ALL ON {ident(db)}.* TO {account}",
        ]
    return statements


def create_application_schema(conn):
    """The application database, its user per range and the user's bootstrap SQL, binlogged, so every member
    gets them. Safe to run again after a crash at any point: the marker row is written last. Returns whether
    it did anything."""
    db = CONFIG["database"]
    marker = query(conn, "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s", (MARKER_SCHEMA, MARKER_TABLE))
    if marker and query(conn, f"SELECT 1 FROM {ident(MARKER_SCHEMA)}.{ident(MARKER_TABLE)} WHERE database_name = %s", (db,)):
        return False
    if int(query(conn, "SELECT @@GLOBAL.super_read_only")[0][0]) == 1:
        raise Retry("not writable yet (super_read_only): creating the application schema later")
    # The marker table is always created before the database, so a database without it was made by a
    # supervisor from before the marker: its bootstrap SQL already ran then and is not repeated.
    legacy = not marker and bool(query(conn, "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (db,)))
    log(f"creating database {db} and its user" + (" (the database predates the marker: its bootstrap SQL is not run again)" if legacy else ""))
    for sql in schema_statements():
        query(conn, sql)
    if CONFIG.get("bootstrapSql") and not legacy:
        schema = local(database=db, multi=True)
        try:
            with schema.cursor() as cur:
                cur.execute(CONFIG["bootstrapSql"])
                while cur.nextset():
                    pass
        finally:
            close_quietly(schema)
        log("bootstrap SQL applied")
    query(conn, f"INSERT IGNORE INTO {ident(MARKER_SCHEMA)}.{ident(MARKER_TABLE)} (database_name) VALUES (%s)", (db,))
    return True


def maybe_create_schema(conn, state, role):
    if SCHEMA_DONE.is_set() or time.time() < SCHEMA_RETRY["at"]:
        return
    group = dict(query(conn, "SELECT MEMBER_HOST, MEMBER_STATE FROM performance_schema.replication_group_members"))
    multi = int(query(conn, "SELECT @@GLOBAL.group_replication_single_primary_mode")[0][0]) == 0
    if not assembly.creates_schema(state, role, multi, group, known_members(), CONFIG["self"]):
        return
    try:
        if create_application_schema(conn):
            log("application schema created")
    except (pymysql.MySQLError, Retry):
        # Bootstrap SQL that fails every time must not fill the log once a second.
        SCHEMA_RETRY["delay"] = min(60.0, max(2.0, SCHEMA_RETRY["delay"] * 2))
        SCHEMA_RETRY["at"] = time.time() + SCHEMA_RETRY["delay"]
        raise
    SCHEMA_DONE.set()


# --- assembly ----------------------------------------------------------------------------------------------

# What the last assembly step saw: whether any peer was in a group. Read by /ready.
GROUP_ELSEWHERE = {"seen": True, "at": 0.0}
LAST_LOGGED = {"decision": None}


def log_decision(decision):
    """Waiting is logged when its reason changes, not every second."""
    key = (decision.action, decision.reason)
    if decision.action in (assembly.JOIN, assembly.BOOTSTRAP) or key != LAST_LOGGED["decision"]:
        suffix = {assembly.JOIN: ": joining it", assembly.BOOTSTRAP: ": bootstrapping"}.get(decision.action, "")
        log(decision.reason + suffix)
    LAST_LOGGED["decision"] = key


def known_members():
    """Every member the decision rule must hear from, in one order all members agree on (by address). The group
    as this member last saw it while ONLINE wins over the configured list, which may predate a scale-out or a
    scale-in (member.json changes without restarting members): after a complete outage the group reboots only
    once every member of the last group answers, and a member removed since is not waited for."""
    try:
        with open(LAST_GROUP_FILE) as f:
            last = json.load(f)
    except (OSError, ValueError):
        last = []
    members = last if isinstance(last, list) and CONFIG["self"] in last else CONFIG["members"]
    return sorted(members)


# Every member of the view counts, UNREACHABLE ones too: only the majority can remove a member from the view,
# so a member cut off from its peers keeps them on record and, once in ERROR, waits for them instead of
# bootstrapping a group of its own (a split brain).
VIEW_STATES = ("ONLINE", "RECOVERING", "UNREACHABLE")


def remember_group(conn):
    """Keeps LAST_GROUP_FILE equal to the members in the group's view while this member is ONLINE."""
    rows = query(conn, "SELECT MEMBER_HOST, MEMBER_STATE FROM performance_schema.replication_group_members")
    members = sorted(host for host, state in rows if state in VIEW_STATES)
    if CONFIG["self"] not in members or members == LAST_GROUP.get("members"):
        return
    try:
        with open(LAST_GROUP_FILE + ".tmp", "w") as f:
            json.dump(members, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(LAST_GROUP_FILE + ".tmp", LAST_GROUP_FILE)
        LAST_GROUP["members"] = members
        log(f"the group is {', '.join(members)}")
    except OSError as err:
        log(f"could not record the group's members: {err}")


LAST_GROUP = {"members": None}


def assemble_once(conn):
    if BOOTSTRAP_FLAG_UNSURE.is_set():
        log("the last bootstrap attempt may have left group_replication_bootstrap_group ON: resetting it")
        reset_bootstrap_flag()
    state, role = own_state(conn)
    views, gtids = {}, ""
    if assembly.needs_peer_views(state):
        views = {m: peer_view(m) for m in known_members() if m != CONFIG["self"]}
        GROUP_ELSEWHERE.update(seen=assembly.group_seen(views), at=time.time())
        gtids = own_gtids(conn)
    decision = assembly.decide(state, gtids, views, known_members(), CONFIG["self"], gtid_subset(conn))
    if decision.stop_first:
        log("left the group in ERROR state: stopping Group Replication before rejoining")
        query(conn, "STOP GROUP_REPLICATION")
    if decision.action != assembly.NOTHING:
        log_decision(decision)
    if decision.action == assembly.JOIN:
        join_group()
        log("joined the group")
    elif decision.action == assembly.BOOTSTRAP:
        bootstrap_group()
        log("group bootstrapped")
        # At once, while the founder is alone: before the others' joins are under way.
        maybe_create_schema(conn, *own_state(conn))
    elif decision.action == assembly.NOTHING:
        LAST_LOGGED["decision"] = None
        if state == "ONLINE":
            remember_group(conn)
        maybe_create_schema(conn, state, role)


def assemble_forever(stop):
    """MySQL errors (a peer or this server unreachable, a START that failed) are expected: logged and retried.
    Anything else escapes to guarded(), which stops the member."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = local()
            assemble_once(conn)
        except (pymysql.MySQLError, Retry) as err:
            cause = f" (after: {err.__context__})" if err.__context__ else ""
            log(f"assembly step failed: {err}{cause}")
            if conn is not None:
                close_quietly(conn)
            conn = None
        stop.wait(ASSEMBLE_INTERVAL)


# --- role checks over HTTP --------------------------------------------------------------------------------

def member_status():
    conn = local()
    try:
        state, role = own_state(conn)
        super_read_only = query(conn, "SELECT @@GLOBAL.super_read_only")[0][0] == 1
        queue = query(conn, "SELECT COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE FROM performance_schema.replication_group_member_stats WHERE MEMBER_ID = @@server_uuid")
        gtids = own_gtids(conn)
        multi = query(conn, "SELECT @@GLOBAL.group_replication_single_primary_mode")[0][0] == 0
        return {"member": CONFIG["member"], "state": state, "role": role, "super_read_only": super_read_only,
                "applier_queue": int(queue[0][0]) if queue else None, "gtid_executed": gtids, "multi_primary": multi}
    finally:
        conn.close()


class RoleCheck(BaseHTTPRequestHandler):
    def answer(self, body):
        url = urlparse(self.path)
        try:
            s = member_status()
        except pymysql.MySQLError as err:
            return self.reply(503, {"error": str(err)}, body)
        online = s["state"] == "ONLINE"
        if url.path == "/primary":
            ok = online and s["role"] == "PRIMARY" and not s["super_read_only"]
        elif url.path == "/replica":
            lag = int(parse_qs(url.query).get("lag", ["0"])[0])
            queue = s["applier_queue"] if s["applier_queue"] is not None else lag + 1
            ok = online and s["role"] == "SECONDARY" and s["super_read_only"] and queue <= lag
        elif url.path == "/ready":
            # In service, or no group anywhere yet (founding, complete outage): members can then start one after
            # another without waiting for a group that needs them all.
            fresh = time.time() - GROUP_ELSEWHERE["at"] < 5 * ASSEMBLE_INTERVAL
            ok = online or (s["state"] in ("OFFLINE", "") and fresh and not GROUP_ELSEWHERE["seen"])
        elif url.path in ("/health", "/member"):
            ok = True
        else:
            return self.reply(404, {"error": "unknown path"}, body)
        self.reply(200 if ok else 503, s, body)

    def reply(self, code, payload, body):
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data) if body else 0))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self):
        self.answer(True)

    def do_OPTIONS(self):
        self.answer(False)

    def log_message(self, *args):
        pass


class RoleCheckServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # HAProxy closes as soon as it has read the status line; that is not an error.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


# --- main -------------------------------------------------------------------------------------------------

class Mysqld:
    """mysqld as a supervised child: MYSQLD_PARENT_PID lets a clone ask for a restart (exit code 16)."""

    def __init__(self):
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["mysqld", f"--defaults-file={DEFAULTS}"], env={**os.environ, "MYSQLD_PARENT_PID": str(os.getpid())})

    def poll(self):
        return self.proc.poll()

    def terminate(self):
        if self.proc is not None:
            self.proc.terminate()


MYSQLD = Mysqld()
# Set once the member is going down (SIGTERM, or mysqld exited): the threads may end then.
STOPPING = threading.Event()
# Set when the supervisor itself failed: mysqld is stopped and the process exits SUPERVISOR_FAILED.
FATAL = threading.Event()


def fatal(what, with_traceback=True):
    details = "\n" + traceback.format_exc().rstrip() if with_traceback else ""
    log(f"{what} failed unexpectedly: stopping mysqld and exiting with {SUPERVISOR_FAILED} so the member is restarted{details}")
    FATAL.set()
    MYSQLD.terminate()


def guarded(what, target, *args):
    """A thread whose death, by an exception or by returning, takes the member down instead of going unnoticed."""
    def run():
        try:
            target(*args)
        except BaseException:
            fatal(what)
            return
        if not STOPPING.is_set():
            fatal(f"{what} (it returned)", with_traceback=False)

    thread = threading.Thread(target=run, name=what, daemon=True)
    thread.start()
    return thread


def supervise():
    """Waits for mysqld to exit and returns its code; restarts it when a clone asks to be restarted, and
    kills it if it has not stopped MYSQLD_STOP_TIMEOUT seconds after a supervisor failure."""
    failed_at = None
    while True:
        try:
            code = MYSQLD.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            if FATAL.is_set():
                failed_at = failed_at or time.time()
                if time.time() - failed_at > MYSQLD_STOP_TIMEOUT:
                    MYSQLD.proc.kill()
            continue
        if code == RESTART_REQUESTED and not STOPPING.is_set() and not FATAL.is_set():
            # A clone replaced the data directory: start on it and let the assembly loop rejoin.
            log("mysqld asked to be restarted (after a clone): starting it again")
            MYSQLD.start()
            continue
        return code


def main():
    load_config()
    prepare_data_directory()
    MYSQLD.start()

    def terminate(*_):
        STOPPING.set()
        MYSQLD.terminate()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    try:
        wait_for_socket()
        if not accounts_done():
            create_local_accounts()
        server = RoleCheckServer(("0.0.0.0", CONFIG["agentPort"]), RoleCheck)
        guarded("the role-check server", server.serve_forever)
        guarded("the assembly loop", assemble_forever, STOPPING)
    except Exception:
        fatal("starting the member")
    code = supervise()
    failed = FATAL.is_set()
    STOPPING.set()
    if failed:
        log(f"mysqld exited with {code}; exiting with {SUPERVISOR_FAILED}")
        sys.exit(SUPERVISOR_FAILED)
    log(f"mysqld exited with {code}")
    sys.exit(code)


if __name__ == "__main__":
    main()
