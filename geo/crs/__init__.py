"""Coordinate systems: pure, vectorised code (numpy, shapely, pyproj) with no Django imports."""
