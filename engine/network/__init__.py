"""Container networking as Docker's bridge driver does it (see each module for the details).

- :mod:`.records`  -- a network and each container's attachment to it, as JSON records;
- :mod:`.ipam`     -- which subnet a network gets and which address a container gets;
- :mod:`.bridge`   -- the kernel side: bridge, veth pair, eth0, nftables NAT and ports;
- :mod:`.dns`      -- a small DNS responder per network, and /etc/hosts, /etc/resolv.conf;
- :mod:`.sweep`    -- after a crash: remove whatever no live record explains.

Nothing here imports pyroute2 or dnspython until it is used.
"""

from .records import Attachment, Network, NetworkError, Store

__all__ = ["Attachment", "Network", "NetworkError", "Store"]
