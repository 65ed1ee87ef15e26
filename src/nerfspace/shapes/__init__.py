"""Procedural objects: 13 categories as parametric SDF assemblies, with exact ground-truth rendering.

`make_object(category, seed)` gives an `SDFObject` (signed distance, albedo and density fields);
`sphere_trace` / `render_views` render it exactly; `shaded_color` and `SDFObject.density` are the fields
to distil a NeRF from, consistent with the rendered images.
"""

from nerfspace.shapes.categories import CATEGORIES, make_object
from nerfspace.shapes.sdf import BETA, SIGMA_MAX, Assembly, SDFObject
from nerfspace.shapes.trace import contact_sheet, render_views, shaded_color, sphere_trace

__all__ = [
    "BETA",
    "CATEGORIES",
    "SIGMA_MAX",
    "Assembly",
    "SDFObject",
    "contact_sheet",
    "make_object",
    "render_views",
    "shaded_color",
    "sphere_trace",
]
