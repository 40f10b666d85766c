"""The paper's model: masks, masked layers, MADE, exact sampling and conditional sampling."""
