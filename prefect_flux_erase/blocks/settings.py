"""`FluxEraseSettings`: the FLUX Erase options as a Prefect block (saved in the UI, reused).

A thin wrapper: the fields, their validation and the wire mapping are the core's
:class:`~prefect_flux_erase.runware.options.EraseOptions`; the block adds only what Prefect needs
(its type name, slug, description) and :meth:`FluxEraseSettings.to_options`, which hands the
pipeline a plain model.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import HttpUrl

from prefect_flux_erase.runware.options import EraseOptions


class FluxEraseSettings(Block, EraseOptions):
    """The FLUX Erase options, validated with the model page's ranges and defaults.

    Saved in the Prefect UI and reused by flows. An invalid value fails at construction with a
    message naming the wire field, the allowed range or values, and the value given. Every
    field, default and check is :class:`~prefect_flux_erase.runware.options.EraseOptions`'s.

    Example:
        ```python
        from prefect_flux_erase import FluxEraseSettings

        settings = FluxEraseSettings(dilate_pixels=15, output_format="PNG")
        settings.save("hair-and-fur")
        task = settings.to_task(task_uuid, image="https://...", mask="data:image/png;base64,...")
        ```
    """

    _block_type_name = "FLUX Erase Settings"
    _block_type_slug = "flux-erase-settings"
    # The model page documents every option these blocks hold.
    _documentation_url = HttpUrl("https://runware.ai/docs/models/bfl-flux-erase")
    _description = "Options of Black Forest Labs' FLUX Erase model (bfl:flux@erase) on Runware."

    def to_options(self) -> EraseOptions:
        """The same options as the core's plain model, which the pipeline runs with.

        Example:
            >>> options = FluxEraseSettings(dilate_pixels=20).to_options()
            >>> type(options).__name__, options.dilate_pixels
            ('EraseOptions', 20)
        """
        return EraseOptions.model_validate(self.model_dump(include=set(EraseOptions.model_fields)))
