"""Per-venue replay policies as data: how a recorded feed's messages map onto the book.

Real feeds differ in small ways that decide whether a rebuilt book stays right: some publish a taker's
"order created" before its fills (an add that briefly crosses the book), some publish the size that *left*
the book on a reduce (LOBSTER), others the size that *remains*. A :class:`VenuePolicy` names those
choices once per venue; :class:`marketlab.lob.OrderBook` stores them in its kernel scalars, so the
kernels branch on data, not on code paths per venue.

Always on, whatever the policy: cancel and modify act by order id alone (the side is ignored), and a
modify to size 0 cancels the order; a price-changing modify is cancel + add (the order loses priority).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from marketlab.core.config import Spec
from marketlab.lob import kernels as K


@dataclass(frozen=True)
class VenuePolicy(Spec):
    """``crossing_add``: what an ``apply_add`` that crosses the opposite best does — ``"reject"`` (status
    ``add_would_cross_book``, the book is unchanged), ``"rest"`` (rest it anyway; the book stays crossed
    until the feed's fills arrive) or ``"defer"`` (hold it out of the book: the feed's fills and cancels
    of its id reduce it silently, and what is left rests, with an add event, after the first command that
    leaves the opposite best no longer crossing it). ``reduce_size``: the ``size`` of an ``apply_reduce`` is the lots that
    ``"left"`` the book or the lots the order has ``"remaining"`` after the event (0 = gone)."""

    crossing_add: Literal["reject", "rest", "defer"] = "reject"
    reduce_size: Literal["left", "remaining"] = "left"

    def scalars(self) -> dict[int, int]:
        """Kernel scalar index -> value encoding this policy."""
        return {
            K.S_XADD: {"reject": K.XADD_REJECT, "rest": K.XADD_REST, "defer": K.XADD_DEFER}[self.crossing_add],
            K.S_REDUCE: K.REDUCE_REMAINING if self.reduce_size == "remaining" else K.REDUCE_LEFT,
        }
