"""Seed 002: the MNIST exercise that shows a convnet's filters and feature
maps, imports changed from tensorflow to fastconv and the exercise's TODOs
filled in.

Needs the MNIST files (see mnist_convnet.py). Plots need matplotlib
(``pip install matplotlib``); without a display they are saved as PNG files
in the current directory.
"""

import os
import sys

import numpy as np

import fastconv as tf

try:
    import matplotlib

    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    from matplotlib import pyplot as plt
except ImportError:
    plt = None


def show(name):
    """plt.show() on a screen; otherwise save the figure as name.png."""
    if matplotlib.get_backend().lower() == "agg":
        plt.savefig(f"{name}.png")
        plt.close()
        print(f"saved {name}.png")
    else:
        plt.show()


def show_filters(layer, n_filters):
    filters, biases = layer.get_weights()

    # plot first few filters
    for i in range(n_filters):
        # get the filter
        f = filters[:, :, :, i]

        # specify subplot and turn of axis
        ax = plt.subplot(n_filters, 3, i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        # plot filter channel in grayscale
        plt.imshow(f[:, :, 0], cmap='gray')

    show("filters")


def show_feature_maps(feature_maps, square_len):
    for i in range(square_len):
        # specify subplot and turn of axis
        ax = plt.subplot(square_len, 2, i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        # plot filter channel in grayscale
        plt.imshow(feature_maps[0, :, :, i], cmap='gray')
    show("feature_maps")


if plt is not None:
    plt.rcParams['figure.figsize'] = [15, 15]

# Load the data and split it between train and test sets
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()

# summarize loaded dataset
print('Train: X=%s, y=%s' % (x_train.shape, y_train.shape))
print('Test: X=%s, y=%s' % (x_test.shape, y_test.shape))

if plt is not None:
    # plot first few images
    for i in range(9):
        plt.subplot(330 + 1 + i)
        plt.imshow(x_train[i], cmap=plt.get_cmap('gray'))
    show("digits")

# Normalize, and give the images shape (28, 28, 1)
x_train = (x_train.astype("float32") / 255).reshape(-1, 28, 28, 1)
x_test = (x_test.astype("float32") / 255).reshape(-1, 28, 28, 1)

input_shape = (28, 28, 1)
classes = 10

# Change y to categorical data
y_train = tf.keras.utils.to_categorical(y_train, classes)
y_test = tf.keras.utils.to_categorical(y_test, classes)

# summarize updated dataset
print('Train: X=%s, y=%s' % (x_train.shape, y_train.shape))
print('Test: X=%s, y=%s' % (x_test.shape, y_test.shape))
print(y_train[0])

# The model architecture
model = tf.keras.Sequential([
    tf.keras.layers.Conv2D(32, (3, 3), activation='relu', input_shape=input_shape),
    tf.keras.layers.MaxPooling2D((2, 2)),
    tf.keras.layers.Conv2D(64, (3, 3), activation='relu'),
    tf.keras.layers.MaxPooling2D((2, 2)),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dropout(0.5),
    tf.keras.layers.Dense(classes, activation='softmax'),
])

model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])

model.summary()

model_1 = tf.keras.Model(inputs=model.inputs, outputs=model.layers[0].output)

img = x_train[0]
img = np.expand_dims(img, axis=0)

feature_maps = model_1.predict(img)
print('Feature maps of the first layer:', feature_maps.shape)

if plt is not None:
    show_filters(model.layers[0], 8)
    show_feature_maps(feature_maps, 8)

model.fit(x_train, y_train, epochs=10, batch_size=32)

score = model.evaluate(x_test, y_test)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
