"""The classroom: ``container-lab serve``, one Linux server for a whole room.

- ``serve.py``     the command: flags, the doors opened, the code printed, the class ended
- ``room.py``      the room: its code, its seats (a uid and a directory each,
                   registered with the supervisor), a seat's app on a pty
- ``seat_app.py``  the course app of one seat: loaded as root, run as the seat's uid
- ``ssh_door.py``  ``ssh -p 2222 NAME@SERVER`` (asyncssh)
- ``web_door.py``  the browser: our join page and cookie in front of textual-serve
- ``limiter.py``   failed joins per source address

The engine enforces the seats' isolation (:mod:`engine.policy`,
``engine/supervisor/seats.py``); nothing here is trusted for it.
"""
