"""The app's screens, and the lesson screen's parts (one module per concern).

- ``welcome.py``, ``course_map.py``, ``help.py``, ``dialogs.py`` -- the other screens.
- ``lesson.py`` -- the lesson screen (:class:`~tui.screens.lesson.LessonScreen`):
  its state and layout; its concerns are mixins, each in a module of its own:

  - ``lesson_steps.py``     moving between steps; hints and check results into view
  - ``lesson_run.py``       a step's lab set up or reset, Run, typed commands, show me
  - ``lesson_checks.py``    checks, quiz answers, progress
  - ``lesson_terminal.py``  the embedded terminal's session
  - ``lesson_lab_panel.py`` the lab panel, and following what was started
  - ``stepthrough.py``      a step-through start (``docker run --explain``)
  - ``lesson_messages.py``  what the lesson's thread workers report

- ``lesson_scroll.py`` -- the lesson's scrolling pane and where it scrolls to.
- ``parts.py`` -- the lesson's widgets: a step, the output, the stage panel, the
  command line, the lab placeholder; ``quiz.py`` a step's quiz;
  ``lesson_text.py`` lesson prose and check results as drawn.
- ``keys.py`` -- every screen's keys, labelled in the language on screen.
- ``lesson.tcss`` -- the lesson screen's styles.
"""
