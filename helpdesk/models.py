"""Step-by-step instructions per phone platform, which a deployment edits in the admin.

Which instruction a phone needs comes from its stored prediction (needed_actions below); the
text itself is the deployment's, seeded by migration 0001 with generic wording.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import models

from migrations_plan.planner.rules import NO_ACTION, WAIT_FOR_IT

from .platforms import OTHER, PLATFORMS


class Action(models.TextChoices):
    """What the user has to do on the phone; the order is the order they do it in."""

    UPDATE_APP = "update_app", "Update the phone or mail app (newer EAS version)"
    RECREATE_ACCOUNT = "recreate_account", "Re-create the mail account"
    ACCEPT_CERTIFICATE = "accept_certificate", "Accept the new certificate"
    WAIT_FOR_APPROVAL = "wait_for_approval", "Wait for approval (quarantine)"
    NOTHING = "nothing", "Nothing to do"


ACTION_ORDER = [a.value for a in Action]


class Instruction(models.Model):
    """What to tell a user of one platform to do for one action: title and plain-text steps."""

    platform = models.CharField(max_length=32, choices=PLATFORMS)
    action = models.CharField(max_length=32, choices=Action.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(
        help_text="Plain text, one step a line; shown as written (no HTML). "
        "{address} is replaced by the person's e-mail address. A platform without its own "
        "text for an action gets the text of 'Other mail app'."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform", "action"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "action"], name="one_instruction_per_platform_action"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()}: {self.get_action_display()}"

    def body_for(self, *, address: str) -> str:
        """The steps with the person's address filled in; still plain text, escaped on output."""
        return self.body.replace("{address}", address)


def pick_instruction(
    instructions: Mapping[tuple[str, str], Instruction], *, platform: str, action: str
) -> Instruction | None:
    """The platform's own text for the action, else the generic one, else none."""
    return instructions.get((platform, action)) or instructions.get((OTHER, action))


# A reason whose user action is one of these asks nothing of the user (planner/wording.py).
_NOTHING_FOR_USER = (NO_ACTION, WAIT_FOR_IT, "Nothing to do")
_REPARTNER = "repartner"


def _asks_user(reason: Mapping) -> bool:
    return not str(reason.get("user_action") or "").startswith(_NOTHING_FOR_USER)


def needed_actions(outcome: str, reasons: Iterable[Mapping]) -> list[str]:
    """The actions a user must take for a prediction, in the order to take them.

    `unknown` gives none: an instruction that could be wrong is worse than "IT is checking".
    Only reasons that are not warnings count (a warning is a fact nobody checked). A blocked
    phone can need several steps (update the app, then re-create the account, then accept
    the certificate); a blocked phone IT alone must fix needs none.
    - re-create: the outcome is repartner, or a repartner reason waits behind a block;
    - X-CERT whose user action asks something of the user (an expired certificate or one not
      covering the host name is fixed on the server: nothing to accept);
    - X-EASVER-EXO: a newer OS or app;
    - X-ABQ when it is a quarantine: every quarantine reason of the planner says so in its
      text; a block is not a queue and waiting would not help.
    """
    if outcome == "unknown":
        return []
    checked = [r for r in reasons if not r.get("is_warning")]
    rules = {r.get("rule") for r in checked if _asks_user(r)}
    found: set[str] = set()
    if "X-EASVER-EXO" in rules:
        found.add(Action.UPDATE_APP.value)
    if outcome == _REPARTNER or any(r.get("outcome") == _REPARTNER for r in checked):
        found.add(Action.RECREATE_ACCOUNT.value)
    if "X-CERT" in rules:
        found.add(Action.ACCEPT_CERTIFICATE.value)
    if any(
        r.get("rule") == "X-ABQ" and "quarantin" in str(r.get("text") or "").lower()
        for r in checked
    ):
        found.add(Action.WAIT_FOR_APPROVAL.value)
    # "Nothing to do" only when no checked reason asks the user anything: a redirect that
    # wants a new sign-in, or a resync prompt, is told by the sentence itself, not by a
    # generic step that would contradict it.
    quiet = not any(_asks_user(r) for r in checked if r.get("outcome") == outcome)
    if not found and quiet and outcome in ("continues", "redirect", "full_resync"):
        found.add(Action.NOTHING.value)
    return [a for a in ACTION_ORDER if a in found]
