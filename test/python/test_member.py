"""Tests of the MySQL member supervisor (images/mysql/member.py) against a scripted stand-in for pymysql.

They check the order of what it asks MySQL, not MySQL itself (the live tests do that): the bootstrap flag,
the idempotent accounts and schema with their markers, and that unexpected errors stop the member.
Run: python3 -m unittest discover -s test/python -v   (from the repository root; no pymysql needed).
"""
import os
import re
import shutil
import sys
import tempfile
import types
import unittest
from unittest import mock

IMAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "images", "mysql")
sys.path.insert(0, IMAGE_DIR)


class MySQLError(Exception):
    pass


class OperationalError(MySQLError):
    pass


class ProgrammingError(MySQLError):
    pass


class FakeServer:
    """Answers statements by the first matching rule: rows, an exception to raise, or a callable."""

    def __init__(self):
        self.rules = []
        self.executed = []  # (connection number, password, sql, args)
        self.connections = 0
        self.refuse_connect = None  # callable(kwargs) -> exception or None

    def on(self, pattern, answer):
        self.rules.insert(0, (re.compile(pattern, re.S), answer))

    def connect(self, **kwargs):
        if self.refuse_connect:
            err = self.refuse_connect(kwargs)
            if err:
                raise err
        self.connections += 1
        return FakeConnection(self, self.connections, kwargs)

    def answer(self, conn, sql, args):
        self.executed.append((conn.number, conn.kwargs.get("password"), sql, args))
        for pattern, answer in self.rules:
            if pattern.search(sql):
                if isinstance(answer, Exception):
                    raise answer
                return answer(sql, args) if callable(answer) else answer
        return ()

    def statements(self):
        return [sql for _, _, sql, _ in self.executed]


class FakeConnection:
    def __init__(self, server, number, kwargs):
        self.server, self.number, self.kwargs, self.closed = server, number, kwargs, False

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


class FakeCursor:
    def __init__(self, conn):
        self.conn, self.rows = conn, ()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def execute(self, sql, args=None):
        self.rows = self.conn.server.answer(self.conn, sql, args)

    def fetchall(self):
        return self.rows

    def nextset(self):
        return False


SERVER = FakeServer()
fake = types.ModuleType("pymysql")
fake.MySQLError = MySQLError
fake.err = types.SimpleNamespace(OperationalError=OperationalError, ProgrammingError=ProgrammingError)
fake.constants = types.SimpleNamespace(CLIENT=types.SimpleNamespace(MULTI_STATEMENTS=1 << 16))
fake.connect = lambda **kwargs: SERVER.connect(**kwargs)
sys.modules["pymysql"] = fake

import member  # noqa: E402

CONFIG = {
    "member": "mysql-0", "members": ["mysql-0", "mysql-1", "mysql-2"], "self": "mysql-0", "port": 3306, "agentPort": 8008,
    "clusterRanges": ["10.0.0.0/8", "172.16.0.0/12"], "database": "app", "bootstrapSql": "CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY);",
    "users": {k: {"name": k, "password": f"{k}-secret"} for k in ("admin", "replication", "monitor", "app")},
}


class SupervisorTest(unittest.TestCase):
    def setUp(self):
        global SERVER
        SERVER = FakeServer()
        member.CONFIG.clear()
        member.CONFIG.update(CONFIG)
        for event in (member.BOOTSTRAP_FLAG_UNSURE, member.SCHEMA_DONE, member.FATAL, member.STOPPING):
            event.clear()
        member.SCHEMA_RETRY.update(at=0.0, delay=0.0)
        member.LAST_LOGGED["decision"] = None
        member.LAST_GROUP["members"] = None
        self.volume = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.volume)
        paths = {"VOLUME": self.volume, "DATADIR": os.path.join(self.volume, "data"),
                 "INITIALIZING": os.path.join(self.volume, ".hadb-initializing"), "ACCOUNTS_DONE": os.path.join(self.volume, ".hadb-accounts-done"),
                 "LAST_GROUP_FILE": os.path.join(self.volume, ".hadb-group.json")}
        for name, value in paths.items():
            patcher = mock.patch.object(member, name, value)
            patcher.start()
            self.addCleanup(patcher.stop)
        os.mkdir(member.DATADIR)
        self.logged = []
        patcher = mock.patch.object(member, "log", lambda m: self.logged.append(m))
        patcher.start()
        self.addCleanup(patcher.stop)

    def flag(self, value):
        SERVER.on(r"SELECT @@GLOBAL\.group_replication_bootstrap_group", [(value,)])


class BootstrapFlag(SupervisorTest):
    def test_join_resets_and_verifies_the_flag_on_a_fresh_connection_before_starting(self):
        loop = SERVER.connect()
        self.flag(0)
        member.join_group()
        later = [(n, sql) for n, _, sql, _ in SERVER.executed]
        self.assertEqual([sql.split(" USER")[0] for _, sql in later],
                         ["SET GLOBAL group_replication_bootstrap_group = OFF", "SELECT @@GLOBAL.group_replication_bootstrap_group", "START GROUP_REPLICATION"])
        self.assertEqual({n for n, _ in later}, {loop.number + 1}, "all on one new connection")

    def test_join_does_not_start_when_the_flag_stays_on(self):
        self.flag(1)
        with self.assertRaises(member.Retry):
            member.join_group()
        self.assertFalse(any(s.startswith("START") for s in SERVER.statements()))

    def test_a_failed_bootstrap_resets_the_flag_on_another_connection(self):
        self.flag(0)
        SERVER.on(r"^START GROUP_REPLICATION", OperationalError(3092, "The server is not configured properly"))
        with self.assertRaises(OperationalError):
            member.bootstrap_group()
        on = [n for n, _, sql, _ in SERVER.executed if sql.endswith("= ON")]
        off = [n for n, _, sql, _ in SERVER.executed if sql.endswith("= OFF")]
        self.assertEqual(len(on), 1)
        self.assertEqual(len(off), 1)
        self.assertNotEqual(on[0], off[0])
        self.assertFalse(member.BOOTSTRAP_FLAG_UNSURE.is_set())

    def test_a_bootstrap_whose_reset_failed_is_reset_first_in_the_next_step(self):
        self.flag(0)
        SERVER.on(r"^START GROUP_REPLICATION", OperationalError(2013, "Lost connection to MySQL server during query"))
        SERVER.on(r"= OFF$", OperationalError(2013, "Lost connection"))
        with self.assertRaises(OperationalError):
            member.bootstrap_group()
        self.assertTrue(member.BOOTSTRAP_FLAG_UNSURE.is_set())
        SERVER.rules = []
        self.flag(0)
        SERVER.on(r"replication_group_members WHERE MEMBER_ID", [("ONLINE", "PRIMARY")])
        SERVER.on(r"MEMBER_HOST, MEMBER_STATE", [("mysql-0", "ONLINE")])
        SERVER.on(r"single_primary_mode", [(1,)])
        SERVER.on(r"information_schema\.tables", [(1,)])
        SERVER.on(r"FROM `hadb`", [(1,)])
        SERVER.executed.clear()
        member.assemble_once(SERVER.connect())
        first = SERVER.statements()[:2]
        self.assertEqual(first, ["SET GLOBAL group_replication_bootstrap_group = OFF", "SELECT @@GLOBAL.group_replication_bootstrap_group"])
        self.assertFalse(member.BOOTSTRAP_FLAG_UNSURE.is_set())


class PeerView(SupervisorTest):
    def test_a_peer_answers_its_state_gtids_and_the_other_hosts_its_group_view_lists(self):
        SERVER.on(r"replication_group_members WHERE MEMBER_ID = @@server_uuid", [("ONLINE", "PRIMARY")])
        SERVER.on(r"MEMBER_HOST FROM performance_schema\.replication_group_members WHERE MEMBER_ID <> @@server_uuid", [("mysql-1",), ("mysql-2",)])
        SERVER.on(r"gtid_executed", [("a:1-9\n",)])
        self.assertEqual(member.peer_view("mysql-0"), (True, "a:1-9", ("mysql-1", "mysql-2")))

    def test_a_peer_in_no_group_and_a_silent_one(self):
        SERVER.on(r"replication_group_members WHERE MEMBER_ID = @@server_uuid", [])
        SERVER.on(r"MEMBER_HOST", [])
        SERVER.on(r"gtid_executed", [("",)])
        self.assertEqual(member.peer_view("mysql-0"), (False, "", ()))
        SERVER.refuse_connect = lambda kwargs: OperationalError(2003, "Can't connect")
        self.assertIsNone(member.peer_view("mysql-0"))


class AssemblyStep(SupervisorTest):
    def test_error_state_stops_then_joins(self):
        SERVER.on(r"replication_group_members WHERE MEMBER_ID", [("ERROR", "")])
        SERVER.on(r"gtid_executed", [("a:1-5",)])
        self.flag(0)
        with mock.patch.object(member, "peer_view", lambda host: (True, "a:1-9")):
            member.assemble_once(SERVER.connect())
        statements = [s.split(" USER")[0] for s in SERVER.statements()]
        self.assertLess(statements.index("STOP GROUP_REPLICATION"), statements.index("START GROUP_REPLICATION"))
        self.assertTrue(member.GROUP_ELSEWHERE["seen"])

    def test_waits_without_starting_when_a_peer_is_silent(self):
        SERVER.on(r"replication_group_members WHERE MEMBER_ID", [])
        SERVER.on(r"gtid_executed", [("",)])
        with mock.patch.object(member, "peer_view", lambda host: None if host == "mysql-2" else (False, "")):
            member.assemble_once(SERVER.connect())
            member.assemble_once(SERVER.connect())
        self.assertFalse(any(s.startswith(("START", "SET GLOBAL")) for s in SERVER.statements()))
        self.assertFalse(member.GROUP_ELSEWHERE["seen"])
        self.assertEqual(len([m for m in self.logged if "did not answer" in m]), 1, "logged once, not every step")

    def test_member_0_bootstraps_a_new_group_and_creates_the_schema_in_the_same_step(self):
        started = lambda: any(s.startswith("START") for s in SERVER.statements())  # noqa: E731
        SERVER.on(r"replication_group_members WHERE MEMBER_ID", lambda sql, args: [("ONLINE", "PRIMARY")] if started() else [])
        SERVER.on(r"MEMBER_HOST, MEMBER_STATE", [("mysql-0", "ONLINE")])
        SERVER.on(r"single_primary_mode", [(1,)])
        SERVER.on(r"super_read_only", [(0,)])
        SERVER.on(r"gtid_executed", [("",)])
        SERVER.on(r"GTID_SUBSET", [(1,)])
        self.flag(0)
        with mock.patch.object(member, "peer_view", lambda host: (False, "")):
            member.assemble_once(SERVER.connect())
        statements = [s.split(" USER")[0] for s in SERVER.statements() if not s.startswith("SELECT") or "bootstrap_group" in s]
        start = statements.index("START GROUP_REPLICATION")
        self.assertEqual(statements[start - 1:start + 3], ["SET GLOBAL group_replication_bootstrap_group = ON", "START GROUP_REPLICATION",
                                                           "SET GLOBAL group_replication_bootstrap_group = OFF", "SELECT @@GLOBAL.group_replication_bootstrap_group"])
        self.assertTrue(statements[start + 3].startswith("CREATE DATABASE IF NOT EXISTS `hadb`"))
        self.assertTrue(member.SCHEMA_DONE.is_set())

    def test_mysql_errors_are_retried_and_anything_else_escapes(self):
        calls = []

        def step(conn):
            calls.append(conn)
            if len(calls) == 1:
                raise OperationalError(2003, "Can't connect")
            if len(calls) == 2:
                raise member.Retry("not yet")
            raise KeyError("users")

        with mock.patch.object(member, "assemble_once", step), mock.patch.object(member, "ASSEMBLE_INTERVAL", 0):
            with self.assertRaises(KeyError):
                member.assemble_forever(member.STOPPING)
        self.assertEqual(len(calls), 3)
        self.assertEqual(len({id(c) for c in calls}), 3, "a fresh connection after each failure")
        self.assertTrue(any("Can't connect" in m for m in self.logged))

    def test_a_guarded_thread_that_dies_stops_mysqld(self):
        terminated = []
        with mock.patch.object(member.MYSQLD, "terminate", lambda: terminated.append(True)):
            member.guarded("the assembly loop", lambda: {}["missing"]).join(5)
        self.assertTrue(member.FATAL.is_set())
        self.assertEqual(terminated, [True])
        self.assertTrue(any("Traceback" in m and "KeyError" in m for m in self.logged))

    def test_a_guarded_thread_that_returns_while_running_stops_mysqld_too(self):
        with mock.patch.object(member.MYSQLD, "terminate", lambda: None):
            member.guarded("the role-check server", lambda: None).join(5)
        self.assertTrue(member.FATAL.is_set())

    def test_a_guarded_thread_may_return_once_stopping(self):
        member.STOPPING.set()
        member.guarded("the assembly loop", lambda: None).join(5)
        self.assertFalse(member.FATAL.is_set())


class DataDirectoryAndAccounts(SupervisorTest):
    def setUp(self):
        super().setUp()
        # Every member starts with super_read_only on (my.cnf).
        SERVER.on(r"SELECT @@GLOBAL.super_read_only", [(1,)])

    def initialise(self, fail=False):
        runs = []

        def run(args, check):
            runs.append(args)
            self.assertTrue(os.path.exists(member.INITIALIZING), "the marker exists while --initialize runs")
            if fail:
                raise member.subprocess.CalledProcessError(1, args)
            os.mkdir(os.path.join(member.DATADIR, "mysql"))

        with mock.patch.object(member.subprocess, "run", run):
            member.prepare_data_directory()
        return runs

    def test_a_new_data_directory_is_initialised_and_a_stale_accounts_marker_dropped(self):
        open(member.ACCOUNTS_DONE, "w").close()
        self.assertEqual(len(self.initialise()), 1)
        self.assertFalse(os.path.exists(member.INITIALIZING))
        self.assertFalse(os.path.exists(member.ACCOUNTS_DONE))

    def test_an_initialised_data_directory_is_left_alone(self):
        os.mkdir(os.path.join(member.DATADIR, "mysql"))
        self.assertEqual(self.initialise(), [])

    def test_an_interrupted_initialisation_is_redone_on_an_empty_directory(self):
        os.mkdir(os.path.join(member.DATADIR, "mysql"))
        open(os.path.join(member.DATADIR, "ibdata1"), "w").close()
        open(member.INITIALIZING, "w").close()
        self.assertEqual(len(self.initialise()), 1)
        self.assertEqual(sorted(os.listdir(member.DATADIR)), ["mysql"])
        self.assertFalse(os.path.exists(member.INITIALIZING))

    def test_a_failed_initialisation_leaves_its_marker(self):
        with self.assertRaises(member.subprocess.CalledProcessError):
            self.initialise(fail=True)
        self.assertTrue(os.path.exists(member.INITIALIZING))

    def test_members_made_before_read_replicas_get_the_source_grant_on_each_start(self):
        member.ensure_source_grants()
        statements = SERVER.statements()
        self.assertEqual(statements[:3], ["SET SESSION sql_log_bin = 0", "SELECT @@GLOBAL.super_read_only", "SET GLOBAL super_read_only = OFF"])
        self.assertEqual(statements[3:-1], [f"GRANT SELECT ON performance_schema.replication_group_members TO 'replication'@'{c}'" for c in CONFIG["clusterRanges"]])
        self.assertEqual(statements[-1], "SET GLOBAL super_read_only = ON")

    def test_a_failed_source_grant_is_logged_not_fatal(self):
        SERVER.on(r"GRANT SELECT ON performance_schema", OperationalError(1290, "super_read_only"))
        member.ensure_source_grants()
        self.assertTrue(any("could not grant" in m for m in self.logged))

    def test_a_socket_lock_left_by_a_killed_mysqld_is_removed_before_mysqld_starts(self):
        run = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, run)
        socket = os.path.join(run, "mysqld.sock")
        for path in (socket, socket + ".lock"):
            with open(path, "w") as f:
                f.write("47\n")
        started = []
        with mock.patch.object(member, "SOCKET", socket), mock.patch.object(member.subprocess, "Popen", lambda args, env: started.append(os.listdir(run))):
            member.Mysqld().start()
        self.assertEqual(started, [[]])

    def test_accounts_are_idempotent_and_marked_done_last(self):
        member.create_local_accounts()
        statements = SERVER.statements()
        # Lowered for the local accounts only: a member takes no other write before Group Replication makes it primary.
        self.assertEqual(statements[:3], ["SET SESSION sql_log_bin = 0", "SELECT @@GLOBAL.super_read_only", "SET GLOBAL super_read_only = OFF"])
        self.assertEqual(statements[-1], "SET GLOBAL super_read_only = ON")
        creates = [s for s in statements if s.startswith("CREATE USER")]
        self.assertEqual(len(creates), 3 * len(CONFIG["clusterRanges"]))
        self.assertTrue(all(s.startswith("CREATE USER IF NOT EXISTS") for s in creates))
        for create in creates:
            account = create.split()[5]
            self.assertIn(f"ALTER USER {account} IDENTIFIED BY", "\n".join(statements))
            self.assertTrue(any(s.startswith("GRANT") and s.split(" TO ")[1].startswith(account) for s in statements))
        self.assertTrue(os.path.exists(member.ACCOUNTS_DONE))

    def test_no_marker_when_the_accounts_fail_part_way(self):
        SERVER.on(r"^GRANT", OperationalError(2013, "Lost connection"))
        with self.assertRaises(OperationalError):
            member.create_local_accounts()
        self.assertFalse(os.path.exists(member.ACCOUNTS_DONE))

    def test_root_with_an_empty_password_after_a_crash_before_it_was_set(self):
        SERVER.refuse_connect = lambda kw: OperationalError(1045, "Access denied") if kw["password"] else None
        member.create_local_accounts()
        self.assertEqual({p for _, p, _, _ in SERVER.executed}, {""})
        self.assertTrue(os.path.exists(member.ACCOUNTS_DONE))

    def test_root_with_the_configured_password_after_a_crash_past_setting_it(self):
        SERVER.refuse_connect = lambda kw: None if kw["password"] == "admin-secret" else OperationalError(1045, "Access denied")
        member.create_local_accounts()
        self.assertEqual({p for _, p, _, _ in SERVER.executed}, {"admin-secret"})

    def test_other_connection_errors_are_not_taken_for_a_wrong_password(self):
        SERVER.refuse_connect = lambda kw: OperationalError(2002, "Can't connect through socket")
        with self.assertRaises(OperationalError):
            member.root_connection()


class ApplicationSchema(SupervisorTest):
    def primary(self, marker_table=False, marker_row=False, database=False, super_read_only=0):
        SERVER.on(r"information_schema\.tables", [(1,)] if marker_table else [])
        SERVER.on(r"FROM `hadb`", [(1,)] if marker_row else [])
        SERVER.on(r"information_schema\.schemata", [(1,)] if database else [])
        SERVER.on(r"super_read_only", [(super_read_only,)])

    def test_created_with_the_marker_written_last(self):
        self.primary()
        self.assertTrue(member.create_application_schema(SERVER.connect()))
        statements = SERVER.statements()
        writes = [s for s in statements if not s.startswith("SELECT")]
        self.assertTrue(writes[0].startswith("CREATE DATABASE IF NOT EXISTS `hadb`"))
        self.assertTrue(writes[1].startswith("CREATE TABLE IF NOT EXISTS `hadb`"))
        self.assertIn("CREATE DATABASE IF NOT EXISTS `app`", writes)
        self.assertTrue(all("IF NOT EXISTS" in s for s in writes if s.startswith("CREATE ")))
        self.assertIn(CONFIG["bootstrapSql"], writes)
        self.assertTrue(writes[-1].startswith("INSERT IGNORE INTO `hadb`"))
        bootstrap = next(n for n, _, s, _ in SERVER.executed if s == CONFIG["bootstrapSql"])
        self.assertEqual(SERVER.connections, bootstrap)

    def test_not_repeated_once_marked(self):
        self.primary(marker_table=True, marker_row=True, database=True)
        self.assertFalse(member.create_application_schema(SERVER.connect()))
        self.assertTrue(all(s.startswith("SELECT") for s in SERVER.statements()))

    def test_finished_after_a_crash_part_way(self):
        self.primary(marker_table=True, marker_row=False, database=True)
        self.assertTrue(member.create_application_schema(SERVER.connect()))
        self.assertIn(CONFIG["bootstrapSql"], SERVER.statements())

    def test_a_database_from_before_the_marker_is_not_given_its_bootstrap_sql_again(self):
        self.primary(marker_table=False, database=True)
        self.assertTrue(member.create_application_schema(SERVER.connect()))
        self.assertNotIn(CONFIG["bootstrapSql"], SERVER.statements())
        self.assertTrue(SERVER.statements()[-1].startswith("INSERT IGNORE INTO `hadb`"))

    def test_waits_while_super_read_only(self):
        self.primary(super_read_only=1)
        with self.assertRaises(member.Retry):
            member.create_application_schema(SERVER.connect())
        self.assertTrue(all(s.startswith("SELECT") for s in SERVER.statements()))

    def test_only_the_member_the_rule_names_and_only_once_per_process(self):
        self.primary()
        SERVER.on(r"MEMBER_HOST, MEMBER_STATE", [("mysql-0", "ONLINE"), ("mysql-1", "ONLINE"), ("mysql-2", "ONLINE")])
        SERVER.on(r"single_primary_mode", [(1,)])
        member.maybe_create_schema(SERVER.connect(), "ONLINE", "SECONDARY")
        self.assertFalse(any(s.startswith("CREATE") for s in SERVER.statements()))
        member.maybe_create_schema(SERVER.connect(), "ONLINE", "PRIMARY")
        self.assertTrue(member.SCHEMA_DONE.is_set())
        SERVER.executed.clear()
        member.maybe_create_schema(SERVER.connect(), "ONLINE", "PRIMARY")
        self.assertEqual(SERVER.executed, [])

    def test_failures_back_off(self):
        self.primary()
        SERVER.on(r"MEMBER_HOST, MEMBER_STATE", [("mysql-0", "ONLINE")])
        SERVER.on(r"single_primary_mode", [(1,)])
        SERVER.on(r"CREATE TABLE IF NOT EXISTS t", ProgrammingError(1064, "syntax"))
        with self.assertRaises(ProgrammingError):
            member.maybe_create_schema(SERVER.connect(), "ONLINE", "PRIMARY")
        SERVER.executed.clear()
        member.maybe_create_schema(SERVER.connect(), "ONLINE", "PRIMARY")
        self.assertEqual(SERVER.executed, [], "not retried before the delay")
        self.assertFalse(member.SCHEMA_DONE.is_set())


class LastGroup(SupervisorTest):
    """After a scale-out or -in the configured member list of an older member is stale: the group it last saw wins."""

    def online_view(self, *hosts, state="ONLINE"):
        SERVER.on(r"MEMBER_HOST, MEMBER_STATE FROM performance_schema.replication_group_members", [(h, state) for h in hosts])

    def test_without_a_recorded_group_the_configured_members_are_asked(self):
        self.assertEqual(member.known_members(), sorted(CONFIG["members"]))

    def test_an_online_member_records_the_group_and_asks_exactly_it_after_an_outage(self):
        grown = sorted(CONFIG["members"] + ["mysql-3.net", "mysql-4.net"])
        self.online_view(*grown)
        member.remember_group(SERVER.connect())
        self.assertEqual(member.known_members(), grown)
        # Scaled back in: the removed members left the view and are no longer waited for.
        self.online_view(*CONFIG["members"])
        member.remember_group(SERVER.connect())
        self.assertEqual(member.known_members(), sorted(CONFIG["members"]))
        self.assertEqual(sum("the group is" in m for m in self.logged), 2)

    def test_a_member_cut_off_from_its_peers_keeps_them_on_record(self):
        # Seen live: recording only ONLINE members left the isolated primary with itself on record, and once
        # in ERROR it bootstrapped a second group beside the majority's.
        SERVER.on(r"MEMBER_HOST, MEMBER_STATE FROM performance_schema.replication_group_members",
                  [("mysql-0", "ONLINE"), ("mysql-1", "UNREACHABLE"), ("mysql-2", "UNREACHABLE")])
        member.remember_group(SERVER.connect())
        self.assertEqual(member.known_members(), sorted(CONFIG["members"]))
        state = member.assembly.decide("ERROR", "g:1-9", {"mysql-1": None, "mysql-2": None}, member.known_members(), "mysql-0", lambda a, b: True)
        self.assertEqual(state.action, member.assembly.WAIT)

    def test_members_in_error_or_offline_are_not_on_record(self):
        SERVER.on(r"MEMBER_HOST, MEMBER_STATE FROM performance_schema.replication_group_members",
                  [("mysql-0", "ONLINE"), ("mysql-1", "RECOVERING"), ("mysql-2", "ERROR")])
        member.remember_group(SERVER.connect())
        self.assertEqual(member.known_members(), ["mysql-0", "mysql-1"])

    def test_a_view_without_this_member_or_an_unreadable_record_is_ignored(self):
        self.online_view("other-0.net", "other-1.net")
        member.remember_group(SERVER.connect())
        self.assertFalse(os.path.exists(member.LAST_GROUP_FILE))
        with open(member.LAST_GROUP_FILE, "w") as f:
            f.write("not json")
        self.assertEqual(member.known_members(), sorted(CONFIG["members"]))


@unittest.skipUnless(os.environ.get("HADB_MEMBER_JSON"), "HADB_MEMBER_JSON names a member.json rendered by the component (test/unit/mysql-supervisor.test.ts sets it)")
class RenderedConfig(SupervisorTest):
    def test_the_supervisor_reads_a_member_json_as_the_component_renders_it(self):
        member.load_config(os.environ["HADB_MEMBER_JSON"])
        self.assertIn(member.CONFIG["self"], member.CONFIG["members"])
        self.assertTrue(member.account_statements())
        self.assertTrue(member.schema_statements())
        self.assertTrue(member.start_statement().startswith("START GROUP_REPLICATION USER = "))
        SERVER.on(r"replication_group_members WHERE MEMBER_ID", [])
        SERVER.on(r"gtid_executed", [("",)])
        with mock.patch.object(member, "peer_view", lambda host: None):
            member.assemble_once(SERVER.connect())
        self.assertTrue(any("did not answer" in m for m in self.logged))


if __name__ == "__main__":
    unittest.main()
