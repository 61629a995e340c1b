"""MNIST LeNet written by hand with trtimport's builder helpers (a network script).

    trtimport examples/mnist/lenet_net.py --weights examples/mnist/lenet.caffemodel

The weights are Caffe's: each layer's blobs are named ``<layer>/<index>`` (``conv1/0`` is the
kernel, ``conv1/1`` the bias). The input is a 28x28 digit scaled by 1/256, as Caffe trained it.
"""

from trtimport.netbuild import NetBuilder


def build_network(network, weights, trt):
    """LeNet: conv-pool-conv-pool-fc-relu-fc-softmax, as in Caffe's examples/mnist."""
    nb = NetBuilder(network, weights, trt)
    x = nb.input("data", (1, 1, 28, 28))
    x = nb.conv(x, 20, 5, kernel="conv1/0", bias="conv1/1", name="conv1")
    x = nb.pool(x, "max", 2, stride=2, name="pool1")
    x = nb.conv(x, 50, 5, kernel="conv2/0", bias="conv2/1", name="conv2")
    x = nb.pool(x, "max", 2, stride=2, name="pool2")
    x = nb.fully_connected(x, 500, weight="ip1/0", bias="ip1/1", name="ip1")
    x = nb.relu(x, name="relu1")
    x = nb.fully_connected(x, 10, weight="ip2/0", bias="ip2/1", name="ip2")
    nb.mark_output(nb.softmax(x, axis=1, name="prob"))
