"""Tests of the read-replica mode of the MySQL member supervisor (images/mysql/member.py), with the scripted
stand-in for pymysql of test_member.py: what it asks MySQL on a first start and on a restart, the GTID
counting, the role-check decisions and the /metrics text.
Run: python3 -m unittest discover -s test/python -v   (from the repository root; no pymysql needed).
"""
import json
import os
import threading
import unittest
import urllib.error
import urllib.request
from unittest import mock

import test_member
from test_member import CONFIG, OperationalError, SupervisorTest, member

REAL_GROUP_VIEW = member.group_view
GROUP = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
VIEW = [("mysql-0", 3306, "ONLINE", "PRIMARY"), ("mysql-1", 3306, "ONLINE", "SECONDARY"), ("mysql-2", 3306, "RECOVERING", "SECONDARY")]


def server():
    return test_member.SERVER


class ReplicaTest(SupervisorTest):
    def setUp(self):
        super().setUp()
        member.CONFIG.update(member="replica-0", self="replica-0", replica={"groupName": GROUP, "analytics": True})
        patcher = mock.patch.object(member, "REPLICA_PROVISIONED", os.path.join(self.volume, ".hadb-replica-provisioned"))
        patcher.start()
        self.addCleanup(patcher.stop)
        member.REPLICA_STARTED["generation"] = None
        member.RECEIVER_RETRY["at"] = 0.0
        member.RECEIVER_SEEN["at"] = None
        member.MYSQLD.generation = 1
        self.view = list(VIEW)
        patcher = mock.patch.object(member, "group_view", lambda: self.view)
        patcher.start()
        self.addCleanup(patcher.stop)

    def fresh(self, clone_state=None, gtids="", plugin="ACTIVE"):
        """A replica's server just after --initialize and the local accounts."""
        s = server()
        s.on(r"performance_schema\.clone_status", [(clone_state, 0, "")] if clone_state else [])
        s.on(r"gtid_executed", [(gtids,)])
        s.on(r"replication_connection_configuration", [])
        s.on(r"information_schema\.plugins", [(plugin,)] if plugin else [])
        s.on(r"replication_asynchronous_connection_failover_managed", [])

    def configured(self, host="mysql-0"):
        s = server()
        s.on(r"replication_connection_configuration", [(host, 3306)])
        s.on(r"replication_asynchronous_connection_failover_managed", [(1,)])

    def writes(self):
        return [sql for sql in server().statements() if not sql.startswith("SELECT") or "asynchronous_connection_failover_add" in sql]


class GtidCount(unittest.TestCase):
    def test_counts_intervals_and_single_transactions(self):
        self.assertEqual(member.gtid_count("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,4e11fa47-71ca-11e1-9e33-c80aa9429562:3"), 7)

    def test_empty_set(self):
        self.assertEqual(member.gtid_count(""), 0)

    def test_text_wrapped_over_lines_as_mysql_returns_it(self):
        self.assertEqual(member.gtid_count("a:1-10,\nb:20-29"), 20)

    def test_tags_are_not_transactions(self):
        self.assertEqual(member.gtid_count("a:1-3:hadb:5-6:8"), 6)


class Provisioning(ReplicaTest):
    def test_a_first_start_clones_a_secondary_then_configures_and_starts_replication(self):
        self.fresh()
        server().on(r"^CLONE INSTANCE", OperationalError(2013, "Lost connection to MySQL server during query"))
        with self.assertRaises(member.Retry):
            member.replicate_once(server().connect())
        self.assertEqual(self.writes(), ["SET GLOBAL clone_valid_donor_list = 'mysql-1:3306'",
                                         "CLONE INSTANCE FROM 'replication'@'mysql-1':3306 IDENTIFIED BY 'replication-secret'"])
        clone = next(n for n, _, sql, _ in server().executed if sql.startswith("CLONE"))
        self.assertFalse(os.path.exists(member.REPLICA_PROVISIONED), "not provisioned until the clone is seen completed")
        self.assertGreater(clone, 1, "the clone runs on a connection of its own")

        # mysqld restarted on the cloned data (supervise() did that): the clone's status says Completed.
        member.MYSQLD.generation += 1
        server().executed.clear()
        self.fresh(clone_state="Completed", gtids=f"{GROUP}:1-20")
        member.replicate_once(server().connect())
        self.assertTrue(os.path.exists(member.REPLICA_PROVISIONED))
        self.assertEqual(self.writes(), [
            "SET SESSION sql_log_bin = 0",
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'mysql-0', SOURCE_PORT = 3306, SOURCE_USER = 'replication', "
            "SOURCE_PASSWORD = 'replication-secret', SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1, "
            "SOURCE_CONNECTION_AUTO_FAILOVER = 1, SOURCE_CONNECT_RETRY = 1, SOURCE_RETRY_COUNT = 3",
            f"SELECT asynchronous_connection_failover_add_managed('', 'GroupReplication', '{GROUP}', 'mysql-0', 3306, '', 80, 60)",
            "START REPLICA",
        ])

    def test_a_restart_resumes_replication_without_cloning_or_configuring_again(self):
        member.write_marker(member.REPLICA_PROVISIONED)
        self.fresh(gtids=f"{GROUP}:1-20")
        self.configured()
        member.replicate_once(server().connect())
        self.assertEqual(self.writes(), ["SET SESSION sql_log_bin = 0", "START REPLICA"])
        server().executed.clear()
        server().on(r"replication_connection_status", [("OFF", 0)])
        member.replicate_once(server().connect())
        self.assertEqual(self.writes(), ["SET SESSION sql_log_bin = 0"], "started once per mysqld start: STOP REPLICA holds")

    def test_data_already_present_is_never_cloned_over(self):
        self.fresh(gtids=f"{GROUP}:1-20")
        self.configured()
        member.replicate_once(server().connect())
        self.assertTrue(os.path.exists(member.REPLICA_PROVISIONED))
        self.assertFalse(any(sql.startswith(("CLONE", "SET GLOBAL clone")) for sql in server().statements()))

    def test_a_clone_in_progress_is_waited_for(self):
        self.fresh(clone_state="In Progress")
        with self.assertRaises(member.Retry):
            member.replicate_once(server().connect())
        self.assertEqual(self.writes(), [])

    def test_without_the_clone_plugin_it_replays_from_empty(self):
        self.fresh(plugin="DISABLED")
        member.replicate_once(server().connect())
        self.assertTrue(os.path.exists(member.REPLICA_PROVISIONED))
        self.assertFalse(any(sql.startswith("CLONE") for sql in server().statements()))
        self.assertIn("START REPLICA", server().statements())
        self.assertTrue(any("clone plugin is not active" in m for m in self.logged))

    def test_a_failed_clone_is_retried_never_replaced_by_replaying_from_empty(self):
        self.fresh()
        server().on(r"^CLONE INSTANCE", OperationalError(3862, "Clone Donor Error"))
        for _ in range(8):
            with self.assertRaises(member.Retry):
                member.replicate_once(server().connect())
        self.assertFalse(os.path.exists(member.REPLICA_PROVISIONED))
        self.assertNotIn("START REPLICA", server().statements())

    def test_waits_while_no_group_member_is_online(self):
        self.fresh()
        self.view = []
        with self.assertRaises(member.Retry):
            member.replicate_once(server().connect())
        self.assertEqual(self.writes(), [])

    def test_never_group_replication(self):
        self.fresh(clone_state="Completed", gtids=f"{GROUP}:1-20")
        member.replicate_once(server().connect())
        self.assertFalse(any("GROUP_REPLICATION" in sql.upper() for sql in server().statements()))

    def test_a_new_data_directory_drops_the_provisioned_marker(self):
        member.write_marker(member.REPLICA_PROVISIONED)
        with mock.patch.object(member.subprocess, "run", lambda args, check: os.mkdir(os.path.join(member.DATADIR, "mysql"))):
            member.prepare_data_directory()
        self.assertFalse(os.path.exists(member.REPLICA_PROVISIONED))


class Sources(ReplicaTest):
    def test_donor_prefers_an_online_secondary_and_source_the_primary(self):
        self.assertEqual(member.choose_donor(VIEW), ("mysql-1", 3306))
        self.assertEqual(member.choose_source(VIEW), ("mysql-0", 3306))

    def test_donor_is_the_primary_when_no_secondary_is_online(self):
        self.assertEqual(member.choose_donor(VIEW[:1] + VIEW[2:]), ("mysql-0", 3306))
        self.assertIsNone(member.choose_donor([("mysql-2", 3306, "RECOVERING", "SECONDARY")]))

    def test_group_view_comes_from_the_first_online_member_that_answers(self):
        hosts = []
        server().refuse_connect = lambda kw: hosts.append(kw["host"]) or (OperationalError(2003, "down") if kw["host"] == "mysql-0" else None)
        server().on(r"WHERE MEMBER_ID = @@server_uuid", [("ONLINE", "SECONDARY")])
        server().on(r"MEMBER_HOST, MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE", [("mysql-1", 3306, "ONLINE", "PRIMARY"), ("mysql-2", None, "ONLINE", "SECONDARY")])
        self.assertEqual(REAL_GROUP_VIEW(), [("mysql-1", 3306, "ONLINE", "PRIMARY"), ("mysql-2", 3306, "ONLINE", "SECONDARY")])
        self.assertEqual(hosts, ["mysql-0", "mysql-1"])
        self.assertEqual({password for _, password, _, _ in server().executed}, {"monitor-secret"})

    def test_a_member_outside_the_group_is_not_asked_for_its_view(self):
        server().on(r"WHERE MEMBER_ID = @@server_uuid", [("OFFLINE", "")])
        self.assertEqual(REAL_GROUP_VIEW(), [])

    def test_a_receiver_that_stopped_on_an_error_is_restarted_on_the_primary(self):
        member.write_marker(member.REPLICA_PROVISIONED)
        self.fresh(gtids=f"{GROUP}:1-20")
        self.configured(host="mysql-1")
        member.REPLICA_STARTED["generation"] = member.MYSQLD.generation
        server().on(r"FROM performance_schema\.replication_connection_status", [("OFF", 2005)])
        member.replicate_once(server().connect())
        self.assertEqual(self.writes()[1:], ["CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'mysql-0', SOURCE_PORT = 3306", "START REPLICA IO_THREAD"])
        server().executed.clear()
        member.replicate_once(server().connect())
        self.assertEqual(self.writes(), ["SET SESSION sql_log_bin = 0"], "not again before RECEIVER_RETRY_INTERVAL")

    def test_a_receiver_stopped_by_an_operator_is_left_alone(self):
        member.write_marker(member.REPLICA_PROVISIONED)
        self.fresh(gtids=f"{GROUP}:1-20")
        self.configured()
        member.REPLICA_STARTED["generation"] = member.MYSQLD.generation
        server().on(r"FROM performance_schema\.replication_connection_status", [("OFF", 0)])
        member.replicate_once(server().connect())
        self.assertEqual(self.writes(), ["SET SESSION sql_log_bin = 0"])


class Accounts(ReplicaTest):
    def setUp(self):
        super().setUp()
        server().on(r"SELECT @@GLOBAL.super_read_only", [(1,)])

    def test_super_read_only_is_lowered_for_the_accounts_only(self):
        member.create_local_accounts()
        statements = server().statements()
        self.assertEqual(statements[:3], ["SET SESSION sql_log_bin = 0", "SELECT @@GLOBAL.super_read_only", "SET GLOBAL super_read_only = OFF"])
        self.assertEqual(statements[-1], "SET GLOBAL super_read_only = ON")

    def test_super_read_only_is_restored_when_the_accounts_fail(self):
        server().on(r"^GRANT", OperationalError(1290, "read only"))
        with self.assertRaises(OperationalError):
            member.create_local_accounts()
        self.assertEqual(server().statements()[-1], "SET GLOBAL super_read_only = ON")
        self.assertFalse(os.path.exists(member.ACCOUNTS_DONE))

    def test_the_replication_user_may_read_the_group_membership(self):
        grants = [s for s in member.account_statements() if s.startswith("GRANT SELECT ON performance_schema.replication_group_members TO 'replication'")]
        self.assertEqual(len(grants), len(CONFIG["clusterRanges"]))


def status(**changes):
    s = {"member": "replica-0", "role": "REPLICA", "analytics": True, "state": "REPLICATING", "provisioned": True, "source": "mysql-0",
         "receiver": "ON", "applier_queue": 0, "seconds_behind": 0.0, "super_read_only": True, "gtid_executed": f"{GROUP}:1-20"}
    s.update(changes)
    return s


class RoleChecks(unittest.TestCase):
    def check(self, path, s, lag=0, now=100.0, seen=None):
        return member.replica_check(path, s, lag, now, seen)

    def test_never_primary(self):
        self.assertFalse(self.check("/primary", status()))

    def test_replica_by_the_applier_queue(self):
        self.assertTrue(self.check("/replica", status(applier_queue=5), lag=5))
        self.assertFalse(self.check("/replica", status(applier_queue=6), lag=5))

    def test_not_replica_while_disconnected_or_writable(self):
        self.assertFalse(self.check("/replica", status(receiver="CONNECTING"), lag=100))
        self.assertFalse(self.check("/replica", status(super_read_only=False), lag=100))
        self.assertFalse(self.check("/replica", status(applier_queue=None), lag=100))

    def test_ready_once_provisioned_configured_and_connected(self):
        self.assertTrue(self.check("/ready", status()))
        self.assertFalse(self.check("/ready", status(provisioned=False, state="PROVISIONING")))
        self.assertFalse(self.check("/ready", status(source="", state="CONFIGURING")))

    def test_ready_while_reconnecting_within_the_grace(self):
        reconnecting = status(receiver="CONNECTING", state="CONNECTING")
        self.assertTrue(self.check("/ready", reconnecting, now=100.0, seen=100.0 - member.RECONNECT_GRACE + 1))
        self.assertFalse(self.check("/ready", reconnecting, now=100.0, seen=100.0 - member.RECONNECT_GRACE - 1))
        self.assertFalse(self.check("/ready", reconnecting, seen=None), "never connected since the supervisor started")
        self.assertFalse(self.check("/ready", status(receiver="OFF", state="ERROR"), seen=99.0))

    def test_health_member_and_unknown_paths(self):
        self.assertTrue(self.check("/health", status(receiver="OFF")))
        self.assertTrue(self.check("/member", status(receiver="OFF")))
        self.assertIsNone(self.check("/nope", status()))

    def test_states(self):
        self.assertEqual(member.replica_state(False, None, "OFF", "OFF", 0), "PROVISIONING")
        self.assertEqual(member.replica_state(True, None, "OFF", "OFF", 0), "CONFIGURING")
        self.assertEqual(member.replica_state(True, ("h", 1), "ON", "ON", 0), "REPLICATING")
        self.assertEqual(member.replica_state(True, ("h", 1), "ON", "OFF", 0), "APPLIER_STOPPED")
        self.assertEqual(member.replica_state(True, ("h", 1), "CONNECTING", "ON", 2003), "CONNECTING")
        self.assertEqual(member.replica_state(True, ("h", 1), "OFF", "ON", 2005), "ERROR")
        self.assertEqual(member.replica_state(True, ("h", 1), "OFF", "ON", 0), "STOPPED")

    def test_seconds_behind(self):
        self.assertEqual(member.seconds_behind(0, None, 50.0, 60.0, 100.0), 0.0)
        self.assertEqual(member.seconds_behind(3, 90.0, 50.0, 95.0, 100.0), 10.0, "the transaction being applied")
        self.assertEqual(member.seconds_behind(3, None, 50.0, 95.0, 100.0), 50.0, "applier stopped: the last applied bounds it")
        self.assertEqual(member.seconds_behind(3, None, None, 95.0, 100.0), 5.0, "nothing applied yet: the last received")
        self.assertIsNone(member.seconds_behind(3, None, None, None, 100.0))
        self.assertIsNone(member.seconds_behind(None, None, None, None, 100.0))


class Status(ReplicaTest):
    def test_replica_status_from_performance_schema(self):
        member.write_marker(member.REPLICA_PROVISIONED)
        s = server()
        s.on(r"super_read_only", [(1,)])
        s.on(r"gtid_executed", [(f"{GROUP}:1-20",)])
        s.on(r"replication_connection_configuration", [("mysql-0", 3306)])
        s.on(r"FROM performance_schema\.replication_connection_status", [("ON", 0, f"{GROUP}:21-23", 1000.0)])
        s.on(r"replication_applier_status WHERE", [("OFF",)])
        s.on(r"replication_applier_status_by_worker", [(None, 990.0, 1010.0)])
        got = member.replica_status()
        self.assertEqual({k: got[k] for k in ("state", "role", "source", "applier_queue", "seconds_behind", "super_read_only", "analytics")},
                         {"state": "APPLIER_STOPPED", "role": "REPLICA", "source": "mysql-0", "applier_queue": 3, "seconds_behind": 20.0,
                          "super_read_only": True, "analytics": True})
        self.assertIsNotNone(member.RECEIVER_SEEN["at"])


class Metrics(unittest.TestCase):
    def samples(self, text):
        return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if line and not line.startswith("#")}

    def test_replica(self):
        text = member.metrics_text(status(applier_queue=4, seconds_behind=2.5, state="REPLICATING"))
        self.assertEqual(self.samples(text), {
            "hadb_mysql_up": "1",
            'hadb_mysql_member_info{member="replica-0",role="REPLICA",state="REPLICATING"}': "1",
            "hadb_mysql_super_read_only": "1",
            "hadb_mysql_applier_queue_transactions": "4",
            'hadb_mysql_replica_info{analytics="true",source="mysql-0"}': "1",
            "hadb_mysql_replica_receiver_connected": "1",
            "hadb_mysql_replica_seconds_behind": "2.5",
        })
        self.assertIn("# TYPE hadb_mysql_replica_seconds_behind gauge", text)

    def test_member(self):
        s = {"member": "mysql-0", "state": "ONLINE", "role": "PRIMARY", "super_read_only": False, "applier_queue": 0, "gtid_executed": "", "multi_primary": False}
        self.assertEqual(self.samples(member.metrics_text(s)), {
            "hadb_mysql_up": "1", 'hadb_mysql_member_info{member="mysql-0",role="PRIMARY",state="ONLINE"}': "1",
            "hadb_mysql_super_read_only": "0", "hadb_mysql_applier_queue_transactions": "0"})

    def test_unknown_figures_and_mysql_down(self):
        self.assertEqual(self.samples(member.metrics_text(status(seconds_behind=None)))["hadb_mysql_replica_seconds_behind"], "NaN")
        self.assertNotIn("hadb_mysql_applier_queue_transactions", member.metrics_text(status(applier_queue=None)))
        self.assertEqual(self.samples(member.metrics_text(None)), {"hadb_mysql_up": "0"})

    def test_label_values_are_escaped(self):
        self.assertIn('member="a\\"b\\\\c"', member.metrics_text(status(member='a"b\\c')))


class Http(ReplicaTest):
    """The role-check server itself, on a loopback port of its own."""

    def setUp(self):
        super().setUp()
        self.httpd = member.RoleCheckServer(("127.0.0.1", 0), member.RoleCheck)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.addCleanup(self.httpd.server_close)
        self.addCleanup(self.httpd.shutdown)

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.httpd.server_address[1]}{path}", timeout=5) as r:
                return r.status, r.headers["Content-Type"], r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers["Content-Type"], err.read().decode()

    def test_replica_paths(self):
        with mock.patch.object(member, "replica_status", lambda: status(applier_queue=3)):
            self.assertEqual(self.get("/primary")[0], 503)
            self.assertEqual(self.get("/replica?lag=2")[0], 503)
            self.assertEqual(self.get("/replica?lag=3")[0], 200)
            code, kind, body = self.get("/member")
            self.assertEqual((code, kind, json.loads(body)["role"]), (200, "application/json", "REPLICA"))
            code, kind, body = self.get("/metrics")
            self.assertEqual((code, kind), (200, "text/plain; version=0.0.4; charset=utf-8"))
            self.assertIn("hadb_mysql_applier_queue_transactions 3", body)

    def test_metrics_when_mysql_is_down(self):
        def down():
            raise OperationalError(2002, "Can't connect")

        with mock.patch.object(member, "replica_status", down):
            self.assertEqual(self.get("/metrics")[0:3:2], (200, "# HELP hadb_mysql_up Whether mysqld answered the supervisor.\n"
                                                               "# TYPE hadb_mysql_up gauge\nhadb_mysql_up 0\n"))
            self.assertEqual(self.get("/ready")[0], 503)

    def test_member_mode_is_unchanged_and_has_metrics(self):
        del member.CONFIG["replica"]
        s = {"member": "mysql-0", "state": "ONLINE", "role": "SECONDARY", "super_read_only": True, "applier_queue": 0, "gtid_executed": "", "multi_primary": False}
        with mock.patch.object(member, "member_status", lambda: s):
            self.assertEqual(self.get("/replica?lag=0")[0], 200)
            self.assertEqual(self.get("/primary")[0], 503)
            self.assertIn('role="SECONDARY"', self.get("/metrics")[2])


if __name__ == "__main__":
    unittest.main()
