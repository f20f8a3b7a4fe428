"""The course app (Textual): ``container-lab`` with no verb.

Where each part lives:

- ``launcher.py``     the ``container-lab`` command: the app, or the engine's CLI
- ``start.py``        starting the app: its command line, the course, the first screen
- ``app.py``          the app: which screen is open, the language, leaving tidily
- ``screens/``        the screens; the lesson screen's concerns a module each
                      (see :mod:`tui.screens`)
- ``widgets/``        the live lab panel (its tabs' rows in ``widgets/lab_model/``)
                      and the embedded terminal (see :mod:`tui.widgets`)
- ``session.py``      the learner's progress and the lab's containers
- ``contracts.py``    what the lesson screen needs of its lab and lab panel
- ``machine.py``      what this machine can do for containers, as the app shows it
- ``course_cache.py`` the checked course, cached
- ``failures.py``     a worker's failure: logged, and one line for the learner
- ``i18n.py``, ``locale/``  the app's own words in English and Chinese
- ``text/``           text layout beyond Textual's (line breaks for Chinese)
- ``app.tcss``        the app's styles (each screen's and widget's beside it)
"""
