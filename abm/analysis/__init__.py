"""Morphometry and BMD proxies of bone volumes (BoneJ / scanner definitions).

Keys returned by :func:`abm.analysis.measure.measure` (``abm measure --json``):

- ``bv_tv``: bone volume fraction of the trabecular compartment (0..1).
- ``porosity``: non-bone fraction of the whole region, cortex included (0..1).
- ``tb_th_um``, ``tb_sp_um``: mean local thickness of bone / of the marrow
  space, micrometres (largest-sphere method, BoneJ conventions).
- ``tb_n_per_mm``: 1 / (Tb.Th + Tb.Sp), per millimetre.
- ``euler``: Euler characteristic of the bone as an isolated object
  (26-connected bone, 6-connected background).
- ``conn_d_per_mm3``: (1 - delta chi) / TV, edge-corrected, per mm^3.
- ``vbmd_mg_cm3``: mean mineral density of the region, mg HA/cm^3.
- ``abmd_g_cm2``: projected mineral per projected bone area, g/cm^2.
- ``tmd_mg_cm3``: mean mineral density of bone voxels, mg HA/cm^3.
- ``cortical_porosity`` (0..1), ``cortical_thickness_um`` (um): only with a
  non-empty cortical mask.
- ``marrow_adiposity``: adipose fraction of the marrow space (0..1), only
  when adipose voxels are given (always for simulation states).
"""
