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
  * answers role checks over HTTP for HAProxy: /primary, /replica?lag=N, and /health, /ready, /member, and
    serves /metrics (Prometheus text format).
Configuration: /etc/hadb/member.json and /etc/hadb/my.cnf, rendered by the MySqlCluster component.

Read-replica mode (member.json has "replica": {groupName, analytics}): the same image runs an asynchronous
replica of the group instead of a member. It never starts Group Replication nor bootstraps; it
  * initialises and creates the local accounts as a member does (super_read_only is lowered for that only);
  * provisions its data once, by cloning an ONLINE member (a SECONDARY if there is one, else the PRIMARY;
    a failed clone is retried), or, only when the clone plugin is not active, by replaying the group's binary
    logs from empty (GTID auto-position; needs binary logs the group has not purged). The marker
    REPLICA_PROVISIONED records it; data already present is never cloned over;
  * replicates from the group with SOURCE_CONNECTION_AUTO_FAILOVER and the group registered as a managed
    source (PRIMARY weight 80, SECONDARY 60): MySQL moves the channel to the new PRIMARY after a failover;
  * starts replication once per mysqld start (skip_replica_start is on), so an operator's STOP REPLICA holds,
    and restarts a receiver that stopped on an error on the group's current PRIMARY (watch_receiver);
  * answers /primary 503; /replica?lag=N 200 when the receiver is connected, super_read_only is on and at
    most N received transactions are unapplied; /ready 200 once provisioned and configured with the receiver
    connected, or reconnecting for less than RECONNECT_GRACE seconds since it was last seen connected.

/metrics (members and replicas; gauges):
  hadb_mysql_up                          1 when mysqld answered the scrape, else 0 (and nothing else follows)
  hadb_mysql_member_info{member,role,state} 1; role PRIMARY|SECONDARY|REPLICA ("" outside a group)
  hadb_mysql_super_read_only             0|1
  hadb_mysql_applier_queue_transactions  members: the group applier queue; replicas: received, not applied
  hadb_mysql_replica_info{analytics,source} 1 (replicas)
  hadb_mysql_replica_receiver_connected  0|1 (replicas)
  hadb_mysql_replica_seconds_behind      (replicas) see seconds_behind(); NaN when MySQL gives no figure
"""
import contextlib
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
# Replica mode: written once the data is provisioned (cloned, or replay from empty chosen); never cloned again.
REPLICA_PROVISIONED = os.path.join(VOLUME, ".hadb-replica-provisioned")
# The binlogged record that the application schema was created: replicated, so any later PRIMARY sees it.
MARKER_SCHEMA = "hadb"
MARKER_TABLE = "application_schema"
ASSEMBLE_INTERVAL = 1.0
RESTART_REQUESTED = 16
SUPERVISOR_FAILED = 1
MYSQLD_STOP_TIMEOUT = 120
ER_ACCESS_DENIED = 1045
# The client lost mysqld: during a clone, that is the restart onto the cloned data.
LOST_CONNECTION = (2006, 2013)
# Replica mode: how long a receiver that was connected may be reconnecting (a failover) and stay ready.
RECONNECT_GRACE = 30.0
# Replica mode: the managed group's weights; the highest one online is the source, so the PRIMARY.
PRIMARY_WEIGHT, SECONDARY_WEIGHT = 80, 60
# Replica mode: connection attempts to one source (1 s apart) before MySQL's failover tries the next one. Seen
# live with a large count: the receiver kept retrying a stopped PRIMARY (50 attempts while watched) and the
# managed-source monitor did not move it. With 3 it followed the new PRIMARY within seconds. A receiver that
# gives up altogether (MySQL does not fail over on an unknown host name) is re-pointed by watch_receiver.
SOURCE_RETRY_COUNT = 3
# Replica mode: seconds between the supervisor's attempts to restart a receiver that stopped on an error.
RECEIVER_RETRY_INTERVAL = 5.0

# member.json: {member, members (addresses in member order), self (this member's address), port, agentPort,
# clusterRanges, users, and for a read replica replica: {groupName, analytics}}, plus application.json beside
# it. Loaded by main(), so tests can import this module.
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


def replica_mode():
    return bool(CONFIG.get("replica"))


def local(password=None, database=None, multi=False, read_timeout=30):
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS if multi else 0
    return pymysql.connect(unix_socket=SOCKET, user="root", password=users()["admin"]["password"] if password is None else password,
                           database=database, autocommit=True, connect_timeout=2, read_timeout=read_timeout, client_flag=flags)


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
    # Markers belong to the data directory they were written for.
    remove_marker(ACCOUNTS_DONE)
    remove_marker(REPLICA_PROVISIONED)
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
        (a, ["ALL ON *.*"], " WITH GRANT OPTION"),
        # The second grant: a read replica's managed-source monitor reads the group's membership as this user.
        (r, ["REPLICATION SLAVE, BACKUP_ADMIN, CLONE_ADMIN, CONNECTION_ADMIN, GROUP_REPLICATION_STREAM ON *.*",
             "SELECT ON performance_schema.replication_group_members"], ""),
        (m, ["SELECT ON performance_schema.*"], ""),
    ]
    statements = [f"ALTER USER 'root'@'localhost' IDENTIFIED BY {quote(a['password'])}"]
    for cidr in CONFIG["clusterRanges"]:
        for user, privileges, option in grants:
            account = f"{quote(user['name'])}@{quote(cidr)}"
            statements += [
                f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {quote(user['password'])}",
                f"ALTER USER {account} IDENTIFIED BY {quote(user['password'])}",
            ] + [f"GRANT {p} TO {account}{option}" for p in privileges]
    return statements


def create_local_accounts():
    """Accounts created on each member with the binary log off, so they add no GTIDs and never conflict.
    One account per range the cluster's members and proxies connect from. The marker is written last."""
    conn = root_connection()
    try:
        with writable_locally(conn):
            for sql in account_statements():
                query(conn, sql)
    finally:
        close_quietly(conn)
    write_marker(ACCOUNTS_DONE)
    log("local accounts created")


@contextlib.contextmanager
def writable_locally(conn):
    """Every member starts with super_read_only on (my.cnf) and Group Replication lowers it on the primary only.
    Local statements that must not reach the binary log run with it lowered for their duration, before the
    member joins anything."""
    query(conn, "SET SESSION sql_log_bin = 0")
    was_on = int(query(conn, "SELECT @@GLOBAL.super_read_only")[0][0]) == 1
    if was_on:
        query(conn, "SET GLOBAL super_read_only = OFF")
    try:
        yield
    finally:
        if was_on:
            query(conn, "SET GLOBAL super_read_only = ON")


def source_grant_statements():
    """The grant a member needs as a replica's source, which members created before it existed lack: MySQL's
    managed-source monitor reads the group's membership as the replication user. Idempotent."""
    r = users()["replication"]
    return [f"GRANT SELECT ON performance_schema.replication_group_members TO {quote(r['name'])}@{quote(cidr)}"
            for cidr in CONFIG["clusterRanges"]]


def ensure_source_grants():
    """Run on every start of a group member whose accounts were made earlier, with the binary log off. A
    failure is logged, not fatal: only a read replica's failover depends on it, and the next start retries."""
    conn = local()
    try:
        with writable_locally(conn):
            for sql in source_grant_statements():
                query(conn, sql)
    except pymysql.MySQLError as err:
        log(f"could not grant the replication user what read replicas need ({err}); retrying on the next start")
    finally:
        close_quietly(conn)


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
    """(in_group, gtid_executed, the other hosts its group view lists) of a peer, or None when it does not answer."""
    try:
        conn = peer(host)
    except (pymysql.MySQLError, OSError):
        return None
    try:
        state = own_state(conn)[0]
        others = query(conn, "SELECT MEMBER_HOST FROM performance_schema.replication_group_members WHERE MEMBER_ID <> @@server_uuid")
        return state in assembly.IN_GROUP, own_gtids(conn), tuple(row[0] for row in others)
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


def step_forever(step, what, stop):
    """MySQL errors (a peer or this server unreachable, a START that failed) are expected: logged and retried.
    Anything else escapes to guarded(), which stops the member."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = local()
            step(conn)
        except (pymysql.MySQLError, Retry) as err:
            cause = f" (after: {err.__context__})" if err.__context__ else ""
            log(f"{what} failed: {err}{cause}")
            if conn is not None:
                close_quietly(conn)
            conn = None
        stop.wait(ASSEMBLE_INTERVAL)


def assemble_forever(stop):
    step_forever(lambda conn: assemble_once(conn), "assembly step", stop)


# --- read-replica mode -------------------------------------------------------------------------------------

def gtid_count(gtid_set):
    """The number of transactions in a GTID set's text, e.g. "uuid:1-5:7,uuid2:3" -> 7. Tags (MySQL 8.3+:
    "uuid:tag:1-3") name the intervals after them and are not counted."""
    total = 0
    for member in gtid_set.replace("\n", "").split(","):
        for part in member.strip().split(":")[1:]:
            first, _, last = part.partition("-")
            if first.isdigit():
                total += int(last or first) - int(first) + 1
    return total


def group_view():
    """[(host, port, state, role)] of the group as an ONLINE member reports it, or [] when none answers."""
    for host in CONFIG["members"]:
        try:
            conn = peer(host)
        except (pymysql.MySQLError, OSError):
            continue
        try:
            if own_state(conn)[0] != "ONLINE":
                continue
            rows = query(conn, "SELECT MEMBER_HOST, MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members")
            return [(h, int(p or CONFIG["port"]), state, role) for h, p, state, role in rows]
        except (pymysql.MySQLError, OSError):
            continue
        finally:
            close_quietly(conn)
    return []


def choose_member(view, roles):
    """The first ONLINE member by the preferred roles, then by address: (host, port), or None."""
    online = sorted((h, p, role) for h, p, state, role in view if state == "ONLINE")
    for wanted in roles:
        for host, port, role in online:
            if role == wanted:
                return host, port
    return None


def choose_donor(view):
    """A SECONDARY if there is one, so the clone does not load the PRIMARY."""
    return choose_member(view, ("SECONDARY", "PRIMARY"))


def choose_source(view):
    """The PRIMARY first: the managed source's weights would move the channel there anyway."""
    return choose_member(view, ("PRIMARY", "SECONDARY"))



def source_host(conn):
    rows = query(conn, "SELECT HOST, PORT FROM performance_schema.replication_connection_configuration WHERE CHANNEL_NAME = ''")
    return (rows[0][0], int(rows[0][1])) if rows and rows[0][0] else None


def has_data(conn):
    """Transactions or a replication channel of its own: data that must never be cloned over."""
    return bool(own_gtids(conn)) or source_host(conn) is not None


def clone_plugin_active(conn):
    rows = query(conn, "SELECT PLUGIN_STATUS FROM information_schema.plugins WHERE PLUGIN_NAME = 'clone'")
    return bool(rows) and rows[0][0] == "ACTIVE"


def mark_provisioned(how):
    write_marker(REPLICA_PROVISIONED)
    log(f"replica data provisioned ({how})")


def clone_statement(host, port):
    r = users()["replication"]
    return f"CLONE INSTANCE FROM {quote(r['name'])}@{quote(host)}:{int(port)} IDENTIFIED BY {quote(r['password'])}"


def clone_from(host, port):
    """On a connection of its own without a read timeout: a clone takes as long as the data needs. Success
    ends with mysqld exiting RESTART_REQUESTED (supervise() restarts it), so this never returns normally."""
    conn = local(read_timeout=None)
    try:
        query(conn, f"SET GLOBAL clone_valid_donor_list = {quote(f'{host}:{port}')}")
        log(f"provisioning the replica by cloning {host}:{port}")
        query(conn, clone_statement(host, port))
    except pymysql.MySQLError as err:
        if err.args and err.args[0] in LOST_CONNECTION:
            raise Retry("mysqld went away during the clone: it restarts on the cloned data (or on its own after a failure)")
        # Never fall back to replaying from empty: the group may have purged the binary logs that needs.
        raise Retry(f"cloning {host}:{port} failed ({err}): trying again")
    finally:
        close_quietly(conn)
    raise Retry("clone finished: waiting for mysqld to restart on the cloned data")


def provision(conn):
    """Once per data directory: clone a member, or choose to replay from empty. Idempotent after a crash: the
    clone's own status, kept in the data directory, tells whether a clone completed."""
    if os.path.exists(REPLICA_PROVISIONED):
        return
    status = query(conn, "SELECT STATE, ERROR_NO, ERROR_MESSAGE FROM performance_schema.clone_status")
    state = status[0][0] if status else ""
    if state == "Completed":
        return mark_provisioned("cloned")
    if state == "In Progress":
        raise Retry("a clone is in progress")
    if has_data(conn):
        return mark_provisioned("the data directory already holds transactions or a replication channel: not cloning over it")
    if not clone_plugin_active(conn):
        return mark_provisioned("the clone plugin is not active: replaying the group's binary logs from empty")
    donor = choose_donor(group_view())
    if donor is None:
        raise Retry("no ONLINE group member answers: waiting to clone one")
    clone_from(*donor)


def change_source_statement(host, port):
    r = users()["replication"]
    return (f"CHANGE REPLICATION SOURCE TO SOURCE_HOST = {quote(host)}, SOURCE_PORT = {int(port)}, "
            f"SOURCE_USER = {quote(r['name'])}, SOURCE_PASSWORD = {quote(r['password'])}, SOURCE_AUTO_POSITION = 1, "
            f"GET_SOURCE_PUBLIC_KEY = 1, SOURCE_CONNECTION_AUTO_FAILOVER = 1, SOURCE_CONNECT_RETRY = 1, "
            f"SOURCE_RETRY_COUNT = {SOURCE_RETRY_COUNT}")


def add_managed_statement(host, port):
    group = CONFIG["replica"]["groupName"]
    return (f"SELECT asynchronous_connection_failover_add_managed('', 'GroupReplication', {quote(group)}, {quote(host)}, "
            f"{int(port)}, '', {PRIMARY_WEIGHT}, {SECONDARY_WEIGHT})")


def configure_replication(conn):
    """The channel and the managed group, each only when missing. The session never binlogs: a replica's own
    transactions would be errant GTIDs."""
    query(conn, "SET SESSION sql_log_bin = 0")
    source = source_host(conn)
    if source is None:
        source = choose_source(group_view())
        if source is None:
            raise Retry("no ONLINE group member answers: waiting to configure replication")
        query(conn, change_source_statement(*source))
        log(f"replicating from {source[0]}:{source[1]}")
    managed = query(conn, "SELECT 1 FROM performance_schema.replication_asynchronous_connection_failover_managed "
                          "WHERE CHANNEL_NAME = '' AND MANAGED_NAME = %s", (CONFIG["replica"]["groupName"],))
    if not managed:
        query(conn, add_managed_statement(*source))
        log("the group is the channel's managed source: the replica follows its PRIMARY")


# The mysqld start (Mysqld.generation) replication was last started for: once per start, so an operator's
# STOP REPLICA is not undone a second later.
REPLICA_STARTED = {"generation": None}


RECEIVER_RETRY = {"at": 0.0}


def watch_receiver(conn):
    """A receiver that stopped on an error (every source it tried failed, e.g. a stopped PRIMARY whose name no
    longer resolves: MySQL does not fail over on that) is pointed at the group's current PRIMARY and started
    again. One stopped by STOP REPLICA has no error and is left alone."""
    rows = query(conn, "SELECT SERVICE_STATE, LAST_ERROR_NUMBER FROM performance_schema.replication_connection_status WHERE CHANNEL_NAME = ''")
    if not rows or rows[0][0] != "OFF" or not int(rows[0][1] or 0) or time.time() < RECEIVER_RETRY["at"]:
        return
    RECEIVER_RETRY["at"] = time.time() + RECEIVER_RETRY_INTERVAL
    source = choose_source(group_view())
    if source is None:
        raise Retry(f"the receiver stopped on error {rows[0][1]} and no ONLINE group member answers")
    if source != source_host(conn):
        query(conn, f"CHANGE REPLICATION SOURCE TO SOURCE_HOST = {quote(source[0])}, SOURCE_PORT = {int(source[1])}")
    query(conn, "START REPLICA IO_THREAD")
    log(f"the receiver had stopped on error {rows[0][1]}: restarted it on {source[0]}:{source[1]}")


def replicate_once(conn):
    provision(conn)
    configure_replication(conn)
    if REPLICA_STARTED["generation"] != MYSQLD.generation:
        query(conn, "START REPLICA")
        REPLICA_STARTED["generation"] = MYSQLD.generation
        log("replication started")
    else:
        watch_receiver(conn)


def replicate_forever(stop):
    step_forever(lambda conn: replicate_once(conn), "replica step", stop)


def seconds_behind(queue, applying, last_applied, last_queued, now):
    """Seconds since the original commit (on the group) of the oldest unapplied transaction; 0 when caught up.
    MySQL names that transaction only while a worker applies it. Otherwise (applier stopped, or between
    transactions) the nearest figures it gives are, in order: the original commit of the last applied
    transaction, an upper bound (too high by the source's idle time after it); then, when nothing was applied
    since the replica started (after a clone), that of the last received one, a lower bound. None without any."""
    if queue == 0:
        return 0.0
    since = applying or last_applied or last_queued
    return None if not since else round(max(0.0, now - since), 3)


def replica_state(provisioned, source, receiver, applier, receiver_error):
    if not provisioned:
        return "PROVISIONING"
    if not source:
        return "CONFIGURING"
    if receiver == "ON":
        return "REPLICATING" if applier == "ON" else "APPLIER_STOPPED"
    if receiver == "CONNECTING":
        return "CONNECTING"
    return "ERROR" if receiver_error else "STOPPED"


# When the receiver was last seen connected, for /ready's reconnection grace.
RECEIVER_SEEN = {"at": None}


def replica_status():
    conn = local()
    try:
        super_read_only = int(query(conn, "SELECT @@GLOBAL.super_read_only")[0][0]) == 1
        gtids = own_gtids(conn)
        source = source_host(conn)
        receiver = query(conn, "SELECT SERVICE_STATE, LAST_ERROR_NUMBER, GTID_SUBTRACT(RECEIVED_TRANSACTION_SET, @@GLOBAL.gtid_executed), "
                               "NULLIF(UNIX_TIMESTAMP(LAST_QUEUED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP), 0) "
                               "FROM performance_schema.replication_connection_status WHERE CHANNEL_NAME = ''")
        applier = query(conn, "SELECT SERVICE_STATE FROM performance_schema.replication_applier_status WHERE CHANNEL_NAME = ''")
        times = query(conn, "SELECT MIN(NULLIF(UNIX_TIMESTAMP(APPLYING_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP), 0)), "
                            "MAX(NULLIF(UNIX_TIMESTAMP(LAST_APPLIED_TRANSACTION_ORIGINAL_COMMIT_TIMESTAMP), 0)), UNIX_TIMESTAMP(NOW(6)) "
                            "FROM performance_schema.replication_applier_status_by_worker WHERE CHANNEL_NAME = ''")
    finally:
        conn.close()
    receiver_state, error, pending, last_queued = receiver[0] if receiver else ("OFF", 0, "", None)
    queue = gtid_count(pending or "") if receiver else None
    applying, last_applied, now = (float(t) if t is not None else None for t in times[0]) if times else (None, None, None)
    behind = seconds_behind(queue, applying, last_applied, float(last_queued) if last_queued else None, now or time.time())
    if receiver_state == "ON":
        RECEIVER_SEEN["at"] = time.time()
    provisioned = os.path.exists(REPLICA_PROVISIONED)
    state = replica_state(provisioned, source, receiver_state, applier[0][0] if applier else "OFF", int(error or 0))
    return {"member": CONFIG["member"], "role": "REPLICA", "analytics": bool(CONFIG["replica"].get("analytics")), "state": state,
            "provisioned": provisioned, "source": source[0] if source else "", "receiver": receiver_state, "applier_queue": queue,
            "seconds_behind": behind, "super_read_only": super_read_only, "gtid_executed": gtids}


def replica_check(path, s, lag, now, receiver_seen):
    """The role checks of a replica: True (200), False (503), None (unknown path)."""
    if path == "/primary":
        return False
    if path == "/replica":
        return s["receiver"] == "ON" and s["super_read_only"] and s["applier_queue"] is not None and s["applier_queue"] <= lag
    if path == "/ready":
        reconnecting = s["receiver"] == "CONNECTING" and receiver_seen is not None and now - receiver_seen < RECONNECT_GRACE
        return s["provisioned"] and bool(s["source"]) and (s["receiver"] == "ON" or reconnecting)
    if path in ("/health", "/member"):
        return True
    return None


# --- /metrics --------------------------------------------------------------------------------------------

def label(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def metrics_text(s):
    """Prometheus text format of a member's or replica's status; s None: mysqld did not answer."""
    lines = []

    def gauge(name, value, help_text, labels=None):
        if value is None:
            return
        rendered = "{" + ",".join(f'{k}="{label(v)}"' for k, v in labels.items()) + "}" if labels else ""
        number = "NaN" if value != value else (str(int(value)) if isinstance(value, (bool, int)) else repr(float(value)))
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{rendered} {number}"])

    gauge("hadb_mysql_up", s is not None, "Whether mysqld answered the supervisor.")
    if s is None:
        return "\n".join(lines) + "\n"
    gauge("hadb_mysql_member_info", 1, "This server's role and state.", {"member": s["member"], "role": s["role"], "state": s["state"]})
    gauge("hadb_mysql_super_read_only", bool(s["super_read_only"]), "Whether super_read_only is on.")
    gauge("hadb_mysql_applier_queue_transactions", s["applier_queue"], "Transactions received and not yet applied.")
    if s["role"] == "REPLICA":
        gauge("hadb_mysql_replica_info", 1, "A read replica of the group.", {"analytics": str(s["analytics"]).lower(), "source": s["source"]})
        gauge("hadb_mysql_replica_receiver_connected", s["receiver"] == "ON", "Whether the replica's receiver is connected to a source.")
        behind = s["seconds_behind"]
        gauge("hadb_mysql_replica_seconds_behind", float("nan") if behind is None else behind,
              "Seconds since the original commit of the oldest unapplied transaction (0 when caught up).")
    return "\n".join(lines) + "\n"


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
        if url.path == "/metrics":
            return self.metrics(body)
        try:
            s = replica_status() if replica_mode() else member_status()
        except pymysql.MySQLError as err:
            return self.reply(503, {"error": str(err)}, body)
        if replica_mode():
            lag = int(parse_qs(url.query).get("lag", ["0"])[0])
            ok = replica_check(url.path, s, lag, time.time(), RECEIVER_SEEN["at"])
            if ok is None:
                return self.reply(404, {"error": "unknown path"}, body)
            return self.reply(200 if ok else 503, s, body)
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

    def metrics(self, body):
        try:
            s = replica_status() if replica_mode() else member_status()
        except pymysql.MySQLError:
            s = None
        self.reply(200, metrics_text(s), body, "text/plain; version=0.0.4; charset=utf-8")

    def reply(self, code, payload, body, content_type="application/json"):
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
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

def remove_stale_socket():
    """Only this supervisor starts mysqld in the container, and never while one runs: a socket and its lock left
    by a killed mysqld are stale. mysqld refuses to start when the lock names a pid that is alive, and after a
    restart of the container that pid can belong to any process of the new one."""
    for path in (SOCKET, SOCKET + ".lock"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Mysqld:
    """mysqld as a supervised child: MYSQLD_PARENT_PID lets a clone ask for a restart (exit code 16)."""

    def __init__(self):
        self.proc = None
        # Counts starts: a replica starts replication once per start of mysqld.
        self.generation = 0

    def start(self):
        self.generation += 1
        remove_stale_socket()
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
            # A clone replaced the data directory: start on it and let the assembly (or replica) loop go on.
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
        elif not replica_mode():
            ensure_source_grants()
        server = RoleCheckServer(("0.0.0.0", CONFIG["agentPort"]), RoleCheck)
        guarded("the role-check server", server.serve_forever)
        if replica_mode():
            # A read replica of the group: never starts Group Replication, never bootstraps.
            guarded("the replica loop", replicate_forever, STOPPING)
        else:
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
