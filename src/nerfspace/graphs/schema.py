"""The feature layout of parameter graphs, shared by the converters and the encoder.

Node features (`x`): layer index (0 for spatial nodes, 1 for the MLP's inputs, …), neuron order
(the index of an MLP input or output neuron; -1 for hidden neurons and spatial nodes), node type,
bias (0 where the NeRF has none). Edge features (`edge_attr`): value, layer index (the source node's),
edge type, position (3 slots, -1 where unused).
"""

NODE_FEATURES = ("layer", "order", "type", "bias")
EDGE_FEATURES = ("value", "layer", "type", "pos_0", "pos_1", "pos_2")

# node types
INPUT, HIDDEN, OUTPUT, SPATIAL_INPUT, PLANE_CELL, HASH_ENTRY = range(6)
NODE_TYPES = 6
MLP_NODE_TYPES = (INPUT, HIDDEN, OUTPUT, SPATIAL_INPUT)  # the neurons, which carry probe features
# edge types
WEIGHT, PLANE_VALUE, HASH_VALUE = range(3)
EDGE_TYPES = 3
