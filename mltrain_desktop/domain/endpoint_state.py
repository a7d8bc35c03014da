"""Endpoint states and the transitions allowed between them (standard library only).

An endpoint is created Transitioning (its service is starting) and ends Deleted (its row and
folder are gone; the only terminal state). In between:

- Transitioning -> Healthy (the ready file says it serves), Failed (it reported an error, ended
  before it was ready, or was not ready in time), Unhealthy (its process or container vanished);
- Healthy -> Unhealthy (the service died while serving);
- Failed, Unhealthy, Stopped -> Transitioning (``start()`` launches it again);
- any live state -> Stopped (``stop()``), and any state -> Deleted (``delete()``).

Staying in a state is allowed for every state but Deleted: it refreshes the detail (a second
``stop()``, a relaunch while still Transitioning).
"""
from __future__ import annotations

import enum


class EndpointState(str, enum.Enum):
    TRANSITIONING = "Transitioning"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    FAILED = "Failed"
    STOPPED = "Stopped"
    DELETED = "Deleted"

    @classmethod
    def _missing_(cls, value):
        raise ValueError(f"unknown endpoint state {value!r}; expected one of "
                         f"{', '.join(s.value for s in cls)}")

    def is_terminal(self) -> bool:
        return self in TERMINAL

    def is_live(self) -> bool:
        """A service process or container is expected to be running in this state."""
        return self in LIVE

    def __str__(self) -> str:  # f-strings print "Healthy", not "EndpointState.HEALTHY"
        return self.value


INITIAL = EndpointState.TRANSITIONING
TERMINAL = frozenset({EndpointState.DELETED})
LIVE = frozenset({EndpointState.TRANSITIONING, EndpointState.HEALTHY})
# What a user may ask for in each state (the window enables its buttons from these).
STARTABLE = frozenset({EndpointState.STOPPED, EndpointState.FAILED, EndpointState.UNHEALTHY})
STOPPABLE = frozenset({EndpointState.TRANSITIONING, EndpointState.HEALTHY,
                       EndpointState.UNHEALTHY})

_S = EndpointState
ALLOWED: dict[EndpointState, frozenset[EndpointState]] = {
    _S.TRANSITIONING: frozenset({_S.HEALTHY, _S.FAILED, _S.UNHEALTHY, _S.STOPPED, _S.DELETED}),
    _S.HEALTHY: frozenset({_S.UNHEALTHY, _S.STOPPED, _S.DELETED}),
    _S.UNHEALTHY: frozenset({_S.TRANSITIONING, _S.STOPPED, _S.DELETED}),
    _S.FAILED: frozenset({_S.TRANSITIONING, _S.STOPPED, _S.DELETED}),
    _S.STOPPED: frozenset({_S.TRANSITIONING, _S.DELETED}),
    _S.DELETED: frozenset(),
}


def can_move(src: EndpointState | str, dst: EndpointState | str) -> bool:
    """Whether an endpoint in ``src`` may be recorded in ``dst``; ValueError for a name that is
    no endpoint state."""
    src, dst = EndpointState(src), EndpointState(dst)
    if src == dst:
        return not src.is_terminal()
    return dst in ALLOWED[src]
