"""How a MySQL member decides what to do about Group Replication: pure functions, no I/O.

The member supervisor (member.py) gathers the facts (its own state and GTID set, what each peer answered)
and acts on the decision; keeping the rule free of pymysql lets it be tested on any machine with a fake
GTID-subset predicate (test/python/test_assembly.py).

The rule, one for a new group and for a complete outage:
  * in a group already (ONLINE, RECOVERING): nothing to do;
  * ERROR (expelled, or left after losing the majority): stop Group Replication first, then decide as below;
  * any peer in a group: join it, unless every such peer still lists this member (an earlier incarnation, killed
    or restarted before the group expelled it): then wait, since the group refuses the join ("old incarnation
    found") and START GROUP_REPLICATION would only return after its 60 s wait for a view, and 30 s more to leave;
  * some peer silent and none in a group: wait, since the silent one may hold a group or newer transactions;
  * every peer answered, none in a group: the member whose GTID set contains every other one bootstraps
    (lowest ordinal on a tie, so member 0 founds a new group) and the others wait for it; when no set contains
    all the others the histories diverged and only an operator can choose which to keep.
"""
from collections import namedtuple

IN_GROUP = ("ONLINE", "RECOVERING")

NOTHING = "nothing"
JOIN = "join"
WAIT = "wait"
BOOTSTRAP = "bootstrap"
MANUAL_RECOVERY = "manual-recovery"

# stop_first: STOP GROUP_REPLICATION before acting (own state ERROR). founder: who bootstraps, once known.
Decision = namedtuple("Decision", "action reason stop_first founder", defaults=(False, None))


def needs_peer_views(own_state):
    """Peers are only asked when the member is not in a group: an ONLINE member never decides anything."""
    return own_state not in IN_GROUP


def group_seen(peers):
    """Whether any peer answered that it is in a group."""
    return any(view is not None and view[0] for view in peers.values())


def listed(view):
    """The hosts a peer's group view lists besides the peer itself (views without them list none)."""
    return view[2] if len(view) > 2 else ()


def decide(own_state, own_gtids, peers, members, self, gtid_subset):
    """What this member does next.

    own_state: this member's MEMBER_STATE ("OFFLINE" when it is in no group view).
    own_gtids: its gtid_executed.
    peers: address -> None (did not answer) or (in_group, gtid_executed[, hosts in its group view]); a missing
           peer counts as silent.
    members: every member's address in member order (ordinal = index); self: this member's address.
    gtid_subset(a, b): whether GTID set a is contained in GTID set b.
    """
    if own_state in IN_GROUP:
        return Decision(NOTHING, f"{own_state} in the group")
    if self not in members:
        raise ValueError(f"this member's address {self!r} is not among the members {list(members)!r}")
    stop_first = own_state == "ERROR"
    others = [m for m in members if m != self]
    in_group = [m for m in others if peers.get(m) is not None and peers[m][0]]
    if in_group and all(self in listed(peers[m]) for m in in_group):
        return Decision(WAIT, f"{', '.join(in_group)} in a group that still lists an earlier incarnation of this member: waiting for the group to expel it before joining", stop_first)
    if in_group:
        return Decision(JOIN, f"{', '.join(in_group)} in a group", stop_first)
    silent = [m for m in others if peers.get(m) is None]
    if silent:
        return Decision(WAIT, f"no group is running and {', '.join(silent)} did not answer: waiting for every member before deciding who bootstraps", stop_first)
    sets = {m: peers[m][1] for m in others}
    sets[self] = own_gtids
    founder = next((c for c in members if all(gtid_subset(sets[o], sets[c]) for o in members if o != c)), None)
    if founder is None:
        described = "; ".join(f"{m}: {sets[m] or 'empty'}" for m in members)
        return Decision(MANUAL_RECOVERY, f"no group is running and no member's GTID set contains all others ({described}): manual recovery needed", stop_first)
    if founder != self:
        return Decision(WAIT, f"no group is running: waiting for {founder}, which has the most advanced GTID set, to bootstrap", stop_first, founder)
    return Decision(BOOTSTRAP, f"no group is running and this member has the most advanced GTID set ({own_gtids or 'empty'})", stop_first, founder)


def creates_schema(own_state, own_role, multi_primary, group, members, self):
    """Whether this member creates the application schema now (idempotently, guarded by a marker row).

    Single-primary: the PRIMARY, the only member that can write. Multi-primary: the ONLINE member with the
    lowest ordinal, so that concurrent DDL on several primaries does not race. group: address -> MEMBER_STATE
    of the members in the group's view. Not while any member is RECOVERING: account DDL on the donor during a
    join was seen to stall the joiner's recovery connection (and itself) for a minute.
    """
    if own_state != "ONLINE" or "RECOVERING" in group.values():
        return False
    if not multi_primary:
        return own_role == "PRIMARY"
    earlier = members[: members.index(self)]
    return not any(group.get(m) == "ONLINE" for m in earlier)


# --- rebooting from a majority: the operator's decision, carried out by the configurator ------------------

REBOOT = "reboot-from-majority"


def reboot_from_majority(views, members, silent_for, grace, gtid_subset):
    """Whether the configurator bootstraps the group from the members that are left, and on which one.

    Only ever asked when the stack says `rebootFromMajority`: without that decision a complete outage with a
    member missing keeps the group down (decide() waits for every member), since a silent member might hold a
    group or transactions of its own. With it, once no member is in a group, a majority of the members
    answers and every other one has been silent for `grace` seconds, the member whose GTID set contains every
    answering member's founds the group again (lowest ordinal on a tie). Any committed transaction was
    certified by a majority, and any two majorities share a member, so that member holds every one of them.

    views: address -> None (silent) or (state, gtid_executed); members: addresses in member order;
    silent_for: address -> seconds it has been silent; gtid_subset(a, b) as for decide().
    Returns Decision(REBOOT, reason, founder=...) or Decision(WAIT, reason).
    """
    answering = [m for m in members if views.get(m) is not None]
    silent = [m for m in members if views.get(m) is None]
    in_group = [m for m in answering if views[m][0] in IN_GROUP]
    if in_group:
        return Decision(WAIT, f"{', '.join(in_group)} in a group: nothing to reboot")
    if not silent:
        return Decision(WAIT, "every member answers: the members reboot the group themselves")
    majority = len(members) // 2 + 1
    if len(answering) < majority:
        return Decision(WAIT, f"only {len(answering)} of {len(members)} members answer: a reboot needs a majority ({majority})")
    recent = [m for m in silent if silent_for.get(m, 0) < grace]
    if recent:
        return Decision(WAIT, f"{', '.join(recent)} silent for less than {grace:g} s: it may be starting")
    sets = {m: views[m][1] for m in answering}
    founder = next((c for c in answering if all(gtid_subset(sets[o], sets[c]) for o in answering if o != c)), None)
    if founder is None:
        described = "; ".join(f"{m}: {sets[m] or 'empty'}" for m in answering)
        return Decision(MANUAL_RECOVERY, f"no answering member's GTID set contains all others ({described}): manual recovery needed")
    return Decision(REBOOT, f"{', '.join(silent)} silent; rebooting the group from {founder}, the most advanced of {', '.join(answering)}", founder=founder)
