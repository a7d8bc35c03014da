"""The PySide6 desktop window: views over the core objects and the widgets they share."""
