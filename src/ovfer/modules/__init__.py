"""Small nn.Modules and functions methods share (CAM, reciprocal points, video features)."""
