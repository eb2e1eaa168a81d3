"""Seed 004: the same MNIST convnet trained on one-hot labels
(to_categorical + categorical_crossentropy), imports changed from keras to
fastconv (and the reshapes sized from the data, not 60000 / 10000).

Needs the MNIST files (see mnist_convnet.py). Keras reached test accuracy
0.9921 with this program.
"""

from fastconv import layers, models
from fastconv.datasets import mnist
from fastconv.utils import to_categorical

model = models.Sequential()
model.add(layers.Conv2D(filters=32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)))
model.add(layers.MaxPooling2D(pool_size=(2, 2)))
model.add(layers.Conv2D(filters=64, kernel_size=(3, 3), activation="relu"))
model.add(layers.MaxPooling2D(pool_size=(2, 2)))
model.add(layers.Conv2D(filters=64, kernel_size=(3, 3), activation="relu"))
model.add(layers.Flatten())
model.add(layers.Dense(units=64, activation="relu"))
model.add(layers.Dense(10, activation="softmax"))
model.summary()

(train_images, train_labels), (test_images, test_labels) = mnist.load_data()
train_images = train_images.reshape((len(train_images), 28, 28, 1))
train_images = train_images.astype("float32") / 255
test_images = test_images.reshape((len(test_images), 28, 28, 1))
test_images = test_images.astype("float32") / 255

train_labels = to_categorical(train_labels)
test_labels = to_categorical(test_labels)

model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(x=train_images, y=train_labels, batch_size=64, epochs=5)

test_loss, test_acc = model.evaluate(x=test_images, y=test_labels)
print(f"Test accuracy: {test_acc:.4f}")
