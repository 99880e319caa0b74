from geo.models.activity import Complaint, EnforcementCase, FixtureLoad
from geo.models.boundaries import Community, District, GridCell, Street, validate_grid_code
from geo.models.resources import (
    Camera,
    EnforcementUnit,
    HotspotCategory,
    HotspotPoint,
    Officer,
    PositionFix,
    Vehicle,
)

__all__ = [
    "Camera", "Community", "Complaint", "District", "EnforcementCase", "EnforcementUnit",
    "FixtureLoad", "GridCell", "HotspotCategory", "HotspotPoint", "Officer", "PositionFix",
    "Street", "Vehicle", "validate_grid_code",
]
