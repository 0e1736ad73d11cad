#!/usr/bin/env python3
"""hadb's MySQL member supervisor.

One process per member, the container's entrypoint. It
  * initialises the data directory on first start and creates the local accounts (not binlogged),
  * runs mysqld and exits with it (the container's restart policy brings the member back),
  * assembles Group Replication by itself, with one rule for a new group and for a complete outage:
    join when any peer is in a group; otherwise, once every member answers and none is in a group, the member
    with the most advanced GTID set (lowest ordinal on a tie) bootstraps and the others join it. A member that
    cannot see every peer never bootstraps, so no second group with the same name can appear;
  * answers role checks over HTTP for HAProxy: /primary, /replica?lag=N, and /health, /ready, /member.
Configuration: /etc/hadb/member.json and /etc/hadb/my.cnf, rendered by the MySqlCluster component.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pymysql

CONFIG = json.load(open("/etc/hadb/member.json"))
DEFAULTS = "/etc/hadb/my.cnf"
DATADIR = "/var/lib/mysql/data"
SOCKET = "/run/mysqld/mysqld.sock"
ME = CONFIG["member"]
# Members are named by address (a container alias, a Pod's DNS name, an IP), in member order.
SELF = CONFIG["self"]
USERS = CONFIG["users"]
ASSEMBLE_INTERVAL = 1.0


def log(message):
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [hadb-member {ME}] {message}", flush=True)


def quote(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def local(password=None, database=None, multi=False):
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS if multi else 0
    return pymysql.connect(unix_socket=SOCKET, user="root", password=USERS["admin"]["password"] if password is None else password,
                           database=database, autocommit=True, connect_timeout=2, read_timeout=30, client_flag=flags)


def peer(host):
    return pymysql.connect(host=host, port=CONFIG["port"], user=USERS["monitor"]["name"], password=USERS["monitor"]["password"],
                           autocommit=True, connect_timeout=1, read_timeout=2)


def query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


# --- data directory and local accounts -------------------------------------------------------------------

def initialise():
    """A fresh data directory: initialise it and create the accounts every member needs before joining."""
    if os.path.isdir(os.path.join(DATADIR, "mysql")):
        return False
    log("initialising a new data directory")
    subprocess.run(["mysqld", f"--defaults-file={DEFAULTS}", "--initialize-insecure"], check=True)
    return True


def create_local_accounts():
    """Accounts created on each member with the binary log off, so they add no GTIDs and never conflict.
    One account per range the cluster's members and proxies connect from."""
    a, r, m = USERS["admin"], USERS["replication"], USERS["monitor"]
    statements = ["SET SESSION sql_log_bin = 0", f"ALTER USER 'root'@'localhost' IDENTIFIED BY {quote(a['password'])}"]
    for cidr in CONFIG["clusterRanges"]:
        host = quote(cidr)
        statements += [
            f"CREATE USER {quote(a['name'])}@{host} IDENTIFIED BY {quote(a['password'])}",
            f"GRANT ALL ON *.* TO {quote(a['name'])}@{host} WITH GRANT OPTION",
            f"CREATE USER {quote(r['name'])}@{host} IDENTIFIED BY {quote(r['password'])}",
            f"GRANT REPLICATION SLAVE, BACKUP_ADMIN, CLONE_ADMIN, CONNECTION_ADMIN, GROUP_REPLICATION_STREAM ON *.* TO {quote(r['name'])}@{host}",
            f"CREATE USER {quote(m['name'])}@{host} IDENTIFIED BY {quote(m['password'])}",
            f"GRANT SELECT ON performance_schema.* TO {quote(m['name'])}@{host}",
        ]
    statements.append("SET SESSION sql_log_bin = 1")
    conn = local(password="")
    try:
        for sql in statements:
            query(conn, sql)
    finally:
        conn.close()
    log("local accounts created")


def wait_for_socket(mysqld, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if mysqld.poll() is not None:
            raise SystemExit(mysqld.returncode)
        try:
            local(password="" if not ACCOUNTS_READY.is_set() else None).close()
            return
        except pymysql.MySQLError:
            time.sleep(0.2)
    raise SystemExit(f"mysqld did not accept connections within {timeout} s")


ACCOUNTS_READY = threading.Event()


# --- group state -----------------------------------------------------------------------------------------

def own_state(conn):
    rows = query(conn, "SELECT MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members WHERE MEMBER_ID = @@server_uuid")
    return rows[0] if rows else ("OFFLINE", "")


def peer_view(host):
    """(in_group, gtid_executed) of a peer, or None when it does not answer."""
    try:
        conn = peer(host)
    except pymysql.MySQLError:
        return None
    try:
        state = own_state(conn)[0]
        gtids = query(conn, "SELECT @@GLOBAL.gtid_executed")[0][0]
        return state in ("ONLINE", "RECOVERING"), gtids.replace("\n", "")
    except pymysql.MySQLError:
        return None
    finally:
        conn.close()


def start_group(conn, bootstrap):
    r = USERS["replication"]
    if bootstrap:
        query(conn, "SET GLOBAL group_replication_bootstrap_group = ON")
    try:
        query(conn, f"START GROUP_REPLICATION USER = {quote(r['name'])}, PASSWORD = {quote(r['password'])}")
    finally:
        if bootstrap:
            # Never left on: a restart with it on would found a second group.
            query(conn, "SET GLOBAL group_replication_bootstrap_group = OFF")


def most_advanced(conn, views):
    """The member whose GTID set contains every other one; ties go to the lowest ordinal. None if they diverged."""
    names = sorted(views, key=lambda n: CONFIG["members"].index(n))
    for candidate in names:
        mine = views[candidate]
        if all(query(conn, "SELECT GTID_SUBSET(%s, %s)", (views[other], mine))[0][0] == 1 for other in names):
            return candidate
    return None


def create_application_schema(conn):
    """On the member that founds the group: the application database, its user and the user's schema, binlogged."""
    app, db = USERS["app"], CONFIG["database"]
    if query(conn, "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (db,)):
        return
    log(f"creating database {db} and its user")
    query(conn, f"CREATE DATABASE `{db}`")
    for cidr in CONFIG["clusterRanges"]:
        query(conn, f"CREATE USER {quote(app['name'])}@{quote(cidr)} IDENTIFIED BY {quote(app['password'])}")
        query(conn, f"GRANT ALL ON `{db}`.* TO {quote(app['name'])}@{quote(cidr)}")
    if CONFIG.get("bootstrapSql"):
        schema = local(database=db, multi=True)
        try:
            with schema.cursor() as cur:
                cur.execute(CONFIG["bootstrapSql"])
                while cur.nextset():
                    pass
        finally:
            schema.close()
        log("bootstrap SQL applied")


# What the last assembly step saw: whether any peer was in a group. Read by /ready.
GROUP_ELSEWHERE = {"seen": True, "at": 0.0}


def assemble_once(conn):
    state, _ = own_state(conn)
    if state in ("ONLINE", "RECOVERING"):
        return
    if state == "ERROR":
        log("left the group in ERROR state: stopping Group Replication before rejoining")
        query(conn, "STOP GROUP_REPLICATION")
    others = [m for m in CONFIG["members"] if m != SELF]
    views = {m: peer_view(m) for m in others}
    GROUP_ELSEWHERE.update(seen=any(v and v[0] for v in views.values()), at=time.time())
    if GROUP_ELSEWHERE["seen"]:
        log("a group is running: joining it")
        start_group(conn, bootstrap=False)
        log("joined the group")
        return
    answered = {m: v[1] for m, v in views.items() if v is not None}
    if len(answered) < len(others):
        missing = sorted(set(others) - set(answered))
        log(f"no group is running and {', '.join(missing)} did not answer: waiting for every member before deciding who bootstraps")
        return
    answered[SELF] = query(conn, "SELECT @@GLOBAL.gtid_executed")[0][0].replace("\n", "")
    founder = most_advanced(conn, answered)
    if founder is None:
        log(f"no group is running and no member's GTID set contains all others ({answered}): manual recovery needed")
        return
    if founder != SELF:
        log(f"no group is running: waiting for {founder}, which has the most advanced GTID set, to bootstrap")
        return
    log(f"no group is running and this member has the most advanced GTID set ({answered[SELF] or 'empty'}): bootstrapping")
    start_group(conn, bootstrap=True)
    create_application_schema(conn)
    log("group bootstrapped")


def assemble_forever(stop):
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = local()
            assemble_once(conn)
        except pymysql.MySQLError as err:
            log(f"assembly step failed: {err}")
            try:
                conn and conn.close()
            except pymysql.MySQLError:
                pass
            conn = None
        stop.wait(ASSEMBLE_INTERVAL)


# --- role checks over HTTP --------------------------------------------------------------------------------

def member_status():
    conn = local()
    try:
        state, role = own_state(conn)
        super_read_only = query(conn, "SELECT @@GLOBAL.super_read_only")[0][0] == 1
        queue = query(conn, "SELECT COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE FROM performance_schema.replication_group_member_stats WHERE MEMBER_ID = @@server_uuid")
        gtids = query(conn, "SELECT @@GLOBAL.gtid_executed")[0][0].replace("\n", "")
        multi = query(conn, "SELECT @@GLOBAL.group_replication_single_primary_mode")[0][0] == 0
        return {"member": ME, "state": state, "role": role, "super_read_only": super_read_only,
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

def run_mysqld():
    """mysqld as a supervised child: MYSQLD_PARENT_PID lets a clone ask for a restart (exit code 16)."""
    return subprocess.Popen(["mysqld", f"--defaults-file={DEFAULTS}"], env={**os.environ, "MYSQLD_PARENT_PID": str(os.getpid())})


RESTART_REQUESTED = 16


def main():
    fresh = initialise()
    if not fresh:
        ACCOUNTS_READY.set()
    stopping = threading.Event()
    mysqld = run_mysqld()

    def terminate(*_):
        stopping.set()
        mysqld.terminate()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    wait_for_socket(mysqld)
    if fresh:
        create_local_accounts()
        ACCOUNTS_READY.set()
    server = RoleCheckServer(("0.0.0.0", CONFIG["agentPort"]), RoleCheck)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=assemble_forever, args=(stop,), daemon=True).start()
    while True:
        code = mysqld.wait()
        if code == RESTART_REQUESTED and not stopping.is_set():
            # A clone replaced the data directory: start on it and let the assembly loop rejoin.
            log("mysqld asked to be restarted (after a clone): starting it again")
            mysqld = run_mysqld()
            continue
        break
    stop.set()
    log(f"mysqld exited with {code}")
    sys.exit(code)


if __name__ == "__main__":
    main()
