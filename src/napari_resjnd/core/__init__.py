"""Qt-free core: model, weights, images, inference, JND. Imports neither napari nor Qt."""
