"""The supervisor's fixed numbers: deadlines, output pacing, size bounds."""

from ..namespaces import KINDS

PROTOCOL = 1
START_TIMEOUT = 30.0               # seconds a child may take to reach execve
LIMIT_CHECK_INTERVAL = 1.0         # seconds between looks at OOM and pids-limit counters
# Requests that build a new process and so wait for its child anyway: the
# tidying after earlier exits is done meanwhile (every other request, and a
# ping, first finishes it -- once a client has its answer, earlier exits are
# tidied). ``start`` is not one: it reuses the cgroup name being removed.
TIDY_LATER = frozenset({"run", "exec"})
TIDY_GRACE = 0.02                  # seconds of quiet after which the supervisor tidies anyway
# A container's output costs the supervisor CPU outside the container's own
# limits (reading, logging, copying to an attached client): each container may
# have OUTPUT_RATE bytes a second of it read (in bursts up to OUTPUT_BURST);
# past that its pipes are left unread until the next refill, and the container
# waits on its own full pipe.
OUTPUT_RATE = 2 << 20
OUTPUT_BURST = 256 << 10
OUTPUT_TICK = 0.05                 # seconds between refills
SINK_BACKLOG = 1 << 20             # bytes kept for an attached client that does not read
SUBSCRIBER_BACKLOG = 4 << 20       # bytes of unsent events after which a subscriber is cut off
LOG_LIMIT = 1 << 20                # supervisor.log rotates past this size (one old file kept)
MAX_LABELS = 64 << 10              # bytes of labels (keys and values) a container may carry
MAX_ENV = 256 << 10                # bytes of environment given to run
NAMESPACE_KINDS = KINDS           # the kinds inspect shows, in order (engine.namespaces)
# The most events one ``events`` reply carries (a seat's client reads the log through it).
EVENTS_REPLY_LIMIT = 1000
