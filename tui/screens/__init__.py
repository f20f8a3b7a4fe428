"""The app's screens: welcome, course map, lesson, help and dialogs, each with its own pieces."""
