"""napari widgets: thin magicgui layers over the Qt-free core."""
