"""The distributed rules on hand-made observation tables: every rule, every message, the watchdog's timing."""
from __future__ import annotations

import pytest

from mltrain_desktop.domain.distributed_policy import (
    EARLY_EXIT_CONFIRM_S, PORT_CHECK_EVERY_S, STOP_GRACE_S, Decision, MpiPolicy, Outcome, PsPolicy, TaskObservation,
    task_names)

T0 = 1_000_000.0  # the runs' start, in the policy's clock
RANKS = ["rank_0", "rank_1"]
PS = ["ps_0", "worker_0", "worker_1", "chief_0"]


ADDRESS = {tag: f"127.0.0.1:{40000 + i}" for i, tag in enumerate(["rank_0", "rank_1", "rank_2", *PS])}


def running(tag, listening=None):
    return TaskObservation(tag, listening=listening, address=ADDRESS[tag])


def ended(tag, code, at, how="", stopped=False, listening=None, where=""):
    return TaskObservation(tag, ended=True, exit_code=code, ended_at=at, how=how, stopped=stopped,
                           listening=listening, address=ADDRESS[tag], where=where)


def mpi(**kw):
    kw.setdefault("startup_timeout_s", 10)
    return MpiPolicy(kw.pop("tags", RANKS), kw.pop("startup_timeout_s"), T0, **kw)


def ps(**kw):
    return PsPolicy(kw.pop("tags", PS), kw.pop("startup_timeout_s", 10), T0, **kw)


# -- names -----------------------------------------------------------------------------------
def test_task_names():
    assert task_names(["rank_1"]) == "rank 1"
    assert task_names(["rank_0", "rank_2"]) == "ranks 0, 2"
    assert task_names(["ps_0", "worker_1"]) == "ps 0, worker 1"
    o = TaskObservation("worker_12")
    assert (o.task_type, o.index, o.name) == ("worker", 12, "worker 12")


def test_a_policy_refuses_unknown_or_repeated_tags():
    with pytest.raises(ValueError, match="distinct task tags"):
        MpiPolicy(["rank_0", "rank_0"], 10, T0)
    with pytest.raises(ValueError, match="needs a chief"):
        PsPolicy(["ps_0", "worker_0"], 10, T0)
    with pytest.raises(ValueError, match="'rank_7' is not a task of this run"):
        mpi().decide([TaskObservation("rank_7")], T0)


# -- MPI: the first bad rank fails the run -----------------------------------------------------
def test_mpi_nothing_to_decide_while_ranks_run():
    assert mpi(watch=False).decide([running("rank_0"), running("rank_1")], T0 + 1) is None
    assert mpi(watch=False).decide([], T0 + 1) is None  # not looked at yet: running


def test_mpi_all_ranks_ending_with_0_succeed():
    d = mpi().decide([ended("rank_0", 0, T0 + 5), ended("rank_1", 0, T0 + 6)], T0 + 7)
    assert d == Decision(Outcome.SUCCEEDED, 0, stop=(), grace_s=0.0)
    assert d.succeeded and d.message is None


def test_mpi_one_rank_ended_with_0_is_not_yet_success():
    assert mpi(watch=False).decide([ended("rank_0", 0, T0 + 5), running("rank_1")], T0 + 6) is None


def test_mpi_a_failed_rank_fails_the_run_naming_it_containers():
    d = mpi().decide([running("rank_0"), ended("rank_1", 1, T0 + 3, how="exited with code 1 (container c1)")], T0 + 4)
    assert d.outcome is Outcome.FAILED and d.exit_code == 1
    assert d.stop == ("rank_0",) and d.grace_s == STOP_GRACE_S and d.task == "rank_1"
    assert d.message == "rank 1 exited with code 1 (container c1); the engine stopped rank 0"


def test_mpi_a_failed_rank_under_mpirun():
    d = mpi(under_mpirun=True).decide(
        [running("rank_0"), ended("rank_1", 137, T0 + 3, how="was killed by signal 9 (SIGKILL)")], T0 + 4)
    assert d.exit_code == 137
    assert d.message == "rank 1 was killed by signal 9 (SIGKILL); the other rank(s) were stopped"


def test_mpi_the_first_failure_wins_and_all_others_are_named():
    tags = ["rank_0", "rank_1", "rank_2"]
    d = mpi(tags=tags).decide([ended("rank_0", 143, T0 + 9), ended("rank_1", 3, T0 + 5), running("rank_2")], T0 + 10)
    assert d.task == "rank_1" and d.exit_code == 3 and d.stop == ("rank_2",)
    assert d.message == "rank 1 exited with code 3; the engine stopped ranks 0, 2"


def test_mpi_a_tie_goes_to_the_first_in_task_order_and_no_time_counts_as_last():
    d = mpi().decide([ended("rank_1", 2, T0 + 5), ended("rank_0", 4, T0 + 5)], T0 + 6)
    assert d.task == "rank_0"
    d = mpi().decide([ended("rank_0", 4, None), ended("rank_1", 2, T0 + 5)], T0 + 6)
    assert d.task == "rank_1"


def test_mpi_a_vanished_rank_fails_with_an_unknown_code():
    d = mpi().decide([running("rank_0"), ended("rank_1", None, T0 + 2)], T0 + 3)
    assert d.exit_code == -1 and d.message == "rank 1 ended (exit code unknown); the engine stopped rank 0"


def test_mpi_a_stopped_rank_is_not_the_failure():
    # mpirun stopped rank 0 after rank 1 was killed; rank 1 wrote no record: nobody is to blame yet
    policy = mpi(under_mpirun=True, watch=False)
    assert policy.decide([ended("rank_0", 143, T0 + 2, stopped=True), running("rank_1")], T0 + 3) is None
    assert policy.first_failure([ended("rank_0", 143, T0 + 2, stopped=True)]) is None
    d = policy.first_failure([ended("rank_0", 143, T0 + 2, stopped=True), ended("rank_1", 1, T0 + 2.5)])
    assert d.task == "rank_1"
    # stopped but every rank ended: not a success either (the runtime's own result decides)
    assert policy.decide([ended("rank_0", 143, T0 + 2, stopped=True), ended("rank_1", 0, T0 + 2)], T0 + 3) is None


def test_a_single_rank_names_no_others():
    d = mpi(tags=["rank_0"]).decide([ended("rank_0", 5, T0 + 1)], T0 + 2)
    assert d.message == "rank 0 exited with code 5" and d.stop == ()


# -- MPI: the start-up watchdog ----------------------------------------------------------------
def test_port_checks_are_due_every_half_second_while_watching():
    policy = mpi()
    assert policy.port_check_due(T0)
    assert not policy.port_check_due(T0 + PORT_CHECK_EVERY_S - 0.01)
    assert policy.port_check_due(T0 + PORT_CHECK_EVERY_S)
    policy.stop_watching()
    assert not policy.port_check_due(T0 + 10)
    assert not mpi(watch=False).port_check_due(T0) and not mpi(watched=[]).port_check_due(T0)


def test_everyone_joined_ends_the_watch():
    policy = mpi(startup_timeout_s=1)
    assert policy.decide([running("rank_0", True), running("rank_1", False)], T0 + 0.5) is None
    assert policy.joined == {"rank_0"} and policy.watching
    assert policy.decide([running("rank_0", False), running("rank_1", True)], T0 + 0.9) is None
    assert policy.joined == {"rank_0", "rank_1"} and not policy.watching
    assert policy.decide([running("rank_0", False), running("rank_1", False)], T0 + 99) is None


def test_the_startup_deadline_names_the_missing_ranks():
    policy = mpi(startup_timeout_s=4)
    looks = [running("rank_0", True), running("rank_1", False)]
    assert policy.decide(looks, T0 + 4.0) is None  # not past it yet
    d = policy.decide(looks, T0 + 4.01)
    assert d.outcome is Outcome.FAILED and d.exit_code == 1 and d.task == "rank_1"
    assert set(d.stop) == {"rank_0", "rank_1"}
    assert d.message == (
        "rank 1 did not join the TensorFlow cluster within the startup deadline (4 s); no listener on "
        "127.0.0.1:40001 while rank 0 waited; raise startup_timeout_s in the compute target's config if the "
        "script does long work before creating its strategy")


def test_the_deadline_lists_several_missing_ranks():
    tags = ["rank_0", "rank_1", "rank_2"]
    d = mpi(tags=tags, startup_timeout_s=2).decide(
        [running("rank_0", False), running("rank_1", True), running("rank_2", False)], T0 + 3)
    assert d.subject == "ranks 0, 2" and d.task == "rank_0"
    assert "no listener on 127.0.0.1:40000, 127.0.0.1:40002 while rank 1 waited" in d.hint


def test_nobody_listening_by_the_deadline_means_no_tf_config_and_ends_the_watch():
    policy = mpi(startup_timeout_s=1)
    quiet = [running("rank_0", False), running("rank_1", False)]
    assert policy.decide(quiet, T0 + 0.5) is None and policy.watching
    assert policy.decide(quiet, T0 + 1.5) is None and not policy.watching
    assert policy.decide([running("rank_0", True), running("rank_1", False)], T0 + 50) is None


def test_looks_without_sockets_leave_the_watchdog_alone():
    policy = mpi(startup_timeout_s=1)
    policy.decide([running("rank_0", True), running("rank_1", False)], T0 + 0.5)
    assert policy.decide([running("rank_0"), running("rank_1")], T0 + 30) is None  # not looked at this poll
    assert policy.decide([running("rank_0", True), running("rank_1", False)], T0 + 30) is not None


def test_a_rank_that_leaves_with_0_without_joining_fails_after_the_confirmation():
    policy = mpi(under_mpirun=True, startup_timeout_s=60)
    looks = [running("rank_0", True), ended("rank_1", 0, T0 + 1, listening=False)]
    assert policy.decide(looks, T0 + 2.0) is None  # first seen: not yet
    assert policy.decide(looks, T0 + 2.0 + EARLY_EXIT_CONFIRM_S - 0.01) is None
    d = policy.decide(looks, T0 + 2.0 + EARLY_EXIT_CONFIRM_S)
    assert d.exit_code == 1 and d.task == "rank_1" and d.stop == ("rank_0",)
    assert d.message == (
        "rank 1 exited with code 0 without joining the TensorFlow cluster; it never listened on its TF_CONFIG "
        "address 127.0.0.1:40001, and rank 0 waited for it; every rank must create "
        "tf.distribute.MultiWorkerMirroredStrategy() (or use Horovod). The engine stopped the job.")


def test_leaving_early_in_containers_says_where_and_that_horovod_needs_a_local_target():
    policy = mpi(startup_timeout_s=60)
    looks = [running("rank_0", True), ended("rank_1", 0, T0 + 1, listening=False, where="container c-rank-1")]
    policy.decide(looks, T0 + 2)
    d = policy.decide(looks, T0 + 3)
    assert d.how == "exited with code 0 without joining the TensorFlow cluster (container c-rank-1)"
    assert "(Horovod needs a local target). The engine stopped the job." in d.hint


def test_the_confirmation_restarts_when_the_early_exit_is_no_longer_seen():
    policy = mpi(startup_timeout_s=60, tags=["rank_0", "rank_1", "rank_2"])
    gone = ended("rank_1", 0, T0 + 1, listening=False)
    policy.decide([running("rank_0", True), gone, running("rank_2", False)], T0 + 2)
    # rank 0 ended too (nobody waits): the clock is reset
    policy.decide([ended("rank_0", 0, T0 + 2.5, listening=False), gone, running("rank_2", False)], T0 + 2.6)
    looks = [running("rank_0", False), gone, running("rank_2", True)]  # rank 2 joined, waits
    assert policy.decide(looks, T0 + 3.5) is None
    assert policy.decide(looks, T0 + 4.0) is None
    assert policy.decide(looks, T0 + 4.5).task == "rank_1"


def test_the_deadline_still_holds_while_an_early_exit_is_being_confirmed():
    policy = mpi(startup_timeout_s=2)
    looks = [running("rank_0", True), ended("rank_1", 0, T0 + 1, listening=False)]
    d = policy.decide(looks, T0 + 2.5)  # first sighting of the early exit, but past the deadline
    assert d.how.startswith("did not join the TensorFlow cluster within the startup deadline (2 s)")


def test_only_the_watched_ranks_are_checked():
    # rank 1 is on another host: its sockets cannot be seen, so it is neither waited for nor blamed
    policy = mpi(startup_timeout_s=1, watched=["rank_0"])
    assert policy.decide([running("rank_0", True), running("rank_1")], T0 + 0.2) is None
    assert not policy.watching
    assert policy.decide([running("rank_0", True), running("rank_1")], T0 + 9) is None


def test_a_failure_comes_before_the_watchdog():
    policy = mpi(startup_timeout_s=1)
    d = policy.decide([running("rank_0", True), ended("rank_1", 2, T0 + 3, listening=False)], T0 + 5)
    assert d.exit_code == 2 and d.how == "exited with code 2"


def test_an_ended_rank_seen_listening_has_not_joined():
    policy = mpi(startup_timeout_s=60)
    policy.decide([running("rank_0", True), ended("rank_1", 0, T0 + 1, listening=True)], T0 + 2)
    assert policy.joined == {"rank_0"}


# -- parameter server: the chief decides -------------------------------------------------------
def all_running(listening=None):
    return [running(t, listening) for t in PS]


def test_ps_the_chief_ending_with_0_succeeds_and_stops_the_servers():
    looks = all_running()[:3] + [ended("chief_0", 0, T0 + 30)]
    d = ps().decide(looks, T0 + 31)
    assert d.succeeded and d.exit_code == 0 and d.grace_s == STOP_GRACE_S
    assert d.stop == ("ps_0", "worker_0", "worker_1") and d.message is None


def test_ps_the_chief_failing_fails_the_run():
    looks = all_running()[:3] + [ended("chief_0", 1, T0 + 30)]
    d = ps().decide(looks, T0 + 31)
    assert d.exit_code == 1 and d.task == "chief_0"
    assert d.message == ("chief 0 exited with code 1; the engine stopped ps 0, worker 0, worker 1 "
                         "(they serve only while the chief runs)")


def test_ps_a_worker_killed_fails_the_run_naming_it():
    looks = [running("ps_0"), running("worker_0"), ended("worker_1", 137, T0 + 9, how="was killed by signal 9 (SIGKILL)"),
             running("chief_0")]
    d = ps().decide(looks, T0 + 10)
    assert d.exit_code == 137 and d.stop == ("ps_0", "worker_0", "chief_0")
    assert d.message == "worker 1 was killed by signal 9 (SIGKILL); the engine stopped ps 0, worker 0, chief 0"


def test_ps_a_worker_leaving_with_0_before_the_chief_fails_the_run():
    looks = [running("ps_0"), ended("worker_0", 0, T0 + 9), running("worker_1"), running("chief_0")]
    d = ps().decide(looks, T0 + 10)
    assert d.exit_code == 1
    assert d.message == ("worker 0 exited with code 0; before the chief finished; ps and worker tasks must serve "
                         "until the chief ends (tf.distribute.Server(...).join()); the engine stopped ps 0, "
                         "worker 1, chief 0")


def test_ps_the_first_to_end_decides():
    # the chief's success came after the ps task died: the run failed
    looks = [ended("ps_0", 1, T0 + 5), running("worker_0"), running("worker_1"), ended("chief_0", 0, T0 + 6)]
    d = ps().decide(looks, T0 + 7)
    assert d.task == "ps_0" and d.exit_code == 1 and d.stop == ("worker_0", "worker_1")
    # and the other way round
    looks = [ended("ps_0", 143, T0 + 7), running("worker_0"), running("worker_1"), ended("chief_0", 0, T0 + 6)]
    assert ps().decide(looks, T0 + 8).succeeded


def test_ps_a_vanished_task_fails_with_an_unknown_code():
    looks = [running("ps_0"), ended("worker_0", None, T0 + 3, how="disappeared"), running("worker_1"),
             running("chief_0")]
    d = ps().decide(looks, T0 + 4)
    assert d.exit_code == -1 and d.message.startswith("worker 0 disappeared; the engine stopped ps 0")


def test_ps_a_raw_negative_code_is_kept():
    looks = [running("ps_0"), running("worker_0"), running("worker_1"), ended("chief_0", -9, T0 + 3)]
    assert ps().decide(looks, T0 + 4).exit_code == -9


# -- parameter server: the start-up deadline ---------------------------------------------------
def test_ps_servers_must_serve_by_the_deadline():
    policy = ps(startup_timeout_s=4)
    looks = [running("ps_0", False), running("worker_0", True), running("worker_1", True), running("chief_0", False)]
    assert policy.decide(looks, T0 + 4.0) is None
    d = policy.decide(looks, T0 + 4.5)
    assert d.exit_code == 1 and d.task == "ps_0" and d.stop == tuple(PS)
    assert d.message == (
        "ps 0 did not start serving within the startup deadline (4 s); no listener on 127.0.0.1:40003; a ps or "
        "worker task must start tf.distribute.Server with its TF_CONFIG and join() it; raise startup_timeout_s "
        "in the compute target's config if it needs longer")


def test_ps_the_chief_is_not_watched_and_joined_servers_end_the_watch():
    policy = ps(startup_timeout_s=1)
    policy.decide([running("ps_0", True), running("worker_0", False), running("worker_1", True),
                   running("chief_0", False)], T0 + 0.5)
    assert policy.watching and policy.joined == {"ps_0", "worker_1"}
    assert policy.decide([running("ps_0", False), running("worker_0", True), running("worker_1", False),
                          running("chief_0", False)], T0 + 0.8) is None
    assert not policy.watching
    assert policy.decide(all_running(False), T0 + 99) is None


def test_ps_the_deadline_names_every_missing_server():
    d = ps(startup_timeout_s=1).decide(all_running(False), T0 + 2)
    assert d.subject == "ps 0, worker 0, worker 1" and d.task == "ps_0"
    assert "no listener on 127.0.0.1:40003, 127.0.0.1:40004, 127.0.0.1:40005;" in d.hint


def test_ps_no_deadline_without_looks_or_watch():
    assert ps(startup_timeout_s=1).decide(all_running(), T0 + 99) is None
    assert ps(startup_timeout_s=1, watch=False).decide(all_running(False), T0 + 99) is None


def test_ps_an_ended_task_decides_before_the_deadline():
    looks = [ended("ps_0", 2, T0 + 50, listening=False)] + all_running(False)[1:]
    assert ps(startup_timeout_s=1).decide(looks, T0 + 60).task == "ps_0"
