"""A container's network -- interfaces, addresses, routes -- as netlink
answers inside its network namespace (:mod:`engine.netinfo` does the
reading; this keeps a watcher per container and turns every failure into a
reason instead of an exception)."""

from __future__ import annotations

from .watch import _Watch


def _watched_network(watch: _Watch, pid: int, procs: list[dict]) -> tuple[dict | None, str | None]:
    """The network through the container's kept :class:`engine.netinfo.Watcher`
    (made on first use, remade when PID 1 is another process): a dump only
    when the kernel announced a change. Never raises."""
    start = next((p["start_ticks"] for p in procs if p["host_pid"] == pid), None)
    if start is None:
        return None, f"process {pid} has exited: its network namespace is gone"
    with watch.lock:
        if watch.closed:
            return read_network(pid, procs)
        try:
            from engine import netinfo
        except Exception as e:  # noqa: BLE001 - no pyroute2: a reason, not a crash
            return None, str(e) or type(e).__name__
        net = watch.net
        if net is not None and (net.pid, net.start_ticks) != (pid, start):
            net.close()
            net = watch.net = None
        try:
            if net is None:
                net = watch.net = netinfo.Watcher(pid, start_ticks=start)
            return net.read(), None
        except Exception as e:  # noqa: BLE001 - netinfo.Unavailable, or a bug: a reason
            return None, str(e) or type(e).__name__


def read_network(pid: int, procs: list[dict] | None = None) -> tuple[dict | None, str | None]:
    """The network of process ``pid`` as (network, None), or (None, why not).
    ``procs``: its processes just read, to be sure ``pid`` is still the same
    process. Never raises."""
    return _network_result(_start_network(pid), pid, procs)


def _start_network(pid: int):
    """A :class:`engine.netinfo.Reading` under way, or the reason there is none."""
    try:
        from engine import netinfo
        return netinfo.Reading(pid)
    except Exception as e:  # noqa: BLE001 - netinfo.Unavailable (no pyroute2), or a bug: a reason
        return str(e) or type(e).__name__


def _network_result(reading, pid: int, procs: list[dict] | None) -> tuple[dict | None, str | None]:
    if isinstance(reading, str):
        return None, reading
    start = None
    if procs is not None:
        start = next((p["start_ticks"] for p in procs if p["host_pid"] == pid), None)
    try:
        network = reading.result(start_ticks=start)
    except Exception as e:  # noqa: BLE001 - netinfo.Unavailable, or a bug: a reason, not a crash
        return None, str(e) or type(e).__name__
    if procs is not None and start is None:
        return None, f"process {pid} has exited: its network namespace is gone"
    return network, None

