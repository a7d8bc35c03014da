"""Qt-free application logic that the window and the CLI share: queries, change watching, previews."""
