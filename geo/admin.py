"""Django admin for the spatial models.

The tables are large (141,800 cameras, tens of thousands of grid cells, a year of complaints), so
every admin here: skips the second, unfiltered COUNT (show_full_result_count), shows related
names through an annotation instead of joining whole rows (a district row carries a boundary of
tens of kilobytes), leaves geometries out of changelist queries, and uses raw-id inputs instead
of dropdowns with thousands of options. Maps use an offline widget (frontend.widgets)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.gis.admin import GISModelAdmin
from django.contrib.gis.db import models as gis_models
from django.db.models import F, QuerySet
from django.http import HttpRequest

from frontend.widgets import OfflineOpenLayersWidget
from geo.models import (
    Camera,
    Community,
    Complaint,
    District,
    EnforcementCase,
    EnforcementUnit,
    FixtureLoad,
    GridCell,
    HotspotPoint,
    Officer,
    PositionFix,
    Street,
    Vehicle,
)


def geometry_field_names(model: Any) -> list[str]:
    """Geometry columns, including the generated 3857 copies."""
    names = []
    for field in model._meta.concrete_fields:
        output = getattr(field, "output_field", None)
        if isinstance(field, gis_models.GeometryField) or isinstance(output, gis_models.GeometryField):
            names.append(field.name)
    return names


class GeometryFreeChangeList(ChangeList):
    """A changelist never displays a geometry, so it does not fetch one."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        return super().get_queryset(request, exclude_parameters).defer(*geometry_field_names(self.model))


class DistrictListFilter(admin.SimpleListFilter):
    """Filter by district from (code, name) only. Django's related-field filter would load all 16
    boundaries to render 16 links."""

    title = "district 区"
    parameter_name = "district"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(District.objects.values_list("code", "name"))

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(district_id=self.value()) if self.value() else queryset


class OneMapGeoAdmin(GISModelAdmin):
    """The base of every spatial admin: offline map widget, cheap changelists."""

    # django-stubs declare type[OSMWidget], but Django accepts any geometry widget class here (the default
    # OSMWidget is itself an OpenLayersWidget subclass); ours is the OpenLayersWidget without online tiles.
    gis_widget = OfflineOpenLayersWidget  # type: ignore[assignment]
    show_full_result_count = False
    list_per_page = 50

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return GeometryFreeChangeList

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        field_names = {f.name for f in self.model._meta.fields}
        # Names of the parents without fetching their boundaries.
        annotations = {f"{parent}_name": F(f"{parent}__name") for parent in ("district", "street")
                       if parent in field_names}
        return queryset.annotate(**annotations) if annotations else queryset

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # A dropdown of a spatial model (16 districts, 20 units) need not carry the boundaries.
        geometry_fields = geometry_field_names(db_field.related_model)
        if geometry_fields and db_field.name not in self.raw_id_fields and "queryset" not in kwargs:
            kwargs["queryset"] = db_field.related_model._default_manager.defer(*geometry_fields)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="district 区", ordering="district_id")
    def district_name(self, obj: Any) -> str:
        return getattr(obj, "district_name", None) or obj.district_id or "-"

    @admin.display(description="street 街道", ordering="street_id")
    def street_name(self, obj: Any) -> str:
        return getattr(obj, "street_name", None) or obj.street_id or "-"


class ReadOnlyAdmin(OneMapGeoAdmin):
    """Rows written by machines (device fixes, fixture loads): visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(District)
class DistrictAdmin(OneMapGeoAdmin):
    list_display = ("code", "name", "name_en")
    search_fields = ("code", "name", "name_en")


@admin.register(Street)
class StreetAdmin(OneMapGeoAdmin):
    list_display = ("code", "name", "kind", "district_name", "synthetic")
    list_filter = (DistrictListFilter, "kind", "synthetic")
    search_fields = ("code", "name")


@admin.register(Community)
class CommunityAdmin(OneMapGeoAdmin):
    list_display = ("code", "name", "street_name", "district_name", "synthetic")
    list_filter = (DistrictListFilter, "synthetic")
    search_fields = ("code", "name")
    raw_id_fields = ("street",)


@admin.register(GridCell)
class GridCellAdmin(OneMapGeoAdmin):
    list_display = ("code", "community_id", "street_name", "district_name", "synthetic")
    list_filter = (DistrictListFilter, "synthetic")
    search_fields = ("code",)
    raw_id_fields = ("community", "street")


@admin.register(HotspotPoint)
class HotspotPointAdmin(OneMapGeoAdmin):
    list_display = ("id", "name", "category", "status", "district_name", "street_name", "opened_at", "closed_at")
    list_filter = (DistrictListFilter, "category", "status")
    search_fields = ("name",)
    raw_id_fields = ("grid_cell", "street")
    readonly_fields = ("updated_at",)


@admin.register(Camera)
class CameraAdmin(OneMapGeoAdmin):
    list_display = ("code", "name", "source", "status", "district_name", "street_name", "owner_unit")
    list_filter = (DistrictListFilter, "source", "status")
    search_fields = ("code", "name", "owner_unit")
    raw_id_fields = ("grid_cell", "street")


@admin.register(EnforcementUnit)
class EnforcementUnitAdmin(OneMapGeoAdmin):
    list_display = ("code", "name", "district_name")
    search_fields = ("code", "name")


class FieldUnitAdmin(OneMapGeoAdmin):
    raw_id_fields = ("street",)
    list_filter: ClassVar[tuple[type[admin.ListFilter] | str, ...]] = (DistrictListFilter, "unit")
    readonly_fields = ("position_at", "speed", "heading", "accuracy")


@admin.register(Officer)
class OfficerAdmin(FieldUnitAdmin):
    list_display = ("call_sign", "name", "badge", "unit", "district_name", "street_name", "position_at")
    list_select_related = ("unit",)
    search_fields = ("call_sign", "name", "badge", "device_id")


@admin.register(Vehicle)
class VehicleAdmin(FieldUnitAdmin):
    list_display = ("call_sign", "plate", "kind", "unit", "district_name", "street_name", "position_at")
    list_select_related = ("unit",)
    list_filter = (DistrictListFilter, "kind", "unit")
    search_fields = ("call_sign", "plate", "device_id")


@admin.register(PositionFix)
class PositionFixAdmin(ReadOnlyAdmin):
    list_display = ("device_id", "recorded_at", "received_at", "speed", "heading", "accuracy", "battery")
    # An exact device id uses the (device_id, recorded_at) unique index; a substring would scan.
    search_fields = ("=device_id",)
    ordering = ("-id",)


@admin.register(Complaint)
class ComplaintAdmin(OneMapGeoAdmin):
    list_display = ("id", "received_at", "source", "category", "status", "district_name", "street_name")
    list_filter = (DistrictListFilter, "source", "category", "status")
    raw_id_fields = ("grid_cell", "street")
    ordering = ("-id",)


@admin.register(EnforcementCase)
class EnforcementCaseAdmin(OneMapGeoAdmin):
    list_display = ("id", "occurred_at", "kind", "category", "off_site", "fine_yuan", "district_name")
    list_filter = (DistrictListFilter, "kind", "category", "off_site")
    raw_id_fields = ("grid_cell", "street")
    ordering = ("-id",)


@admin.register(FixtureLoad)
class FixtureLoadAdmin(ReadOnlyAdmin):
    list_display = ("name", "checksum", "loaded_at")
