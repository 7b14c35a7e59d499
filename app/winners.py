"""Declare winner: a confirmation that shows what it will do, the move it showed, and its undo."""
from flask import current_app
from sqlalchemy import func, select, update

from app import analytics, audit
from app.campaigns import CampaignError, planned_variant
from app.extensions import db
from app.models import Campaign, CampaignRecipient

R = CampaignRecipient
OPEN = ("running", "paused")  # the only states with results and people still to text


def winner_preview(campaign_id, variant_id):
    """What declaring this variant the winner would do, for the confirmation step: every variant's
    numbers and the test between them, warnings, and how many people not yet texted move from
    each other variant. "fingerprint" names all of it; declare_winner acts only on the same one."""
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    winner = next((v for v in campaign.variants if v.id == variant_id), None)
    if winner is None:
        raise CampaignError("That variant is not part of this campaign.")
    if campaign.status not in OPEN:
        raise CampaignError(f"A {campaign.status} campaign has no one left to text: there is no winner to declare.")
    results = analytics.campaign_results(campaign_id)
    labels = {v["id"]: v["label"] for v in results["variants"]}
    moves = dict(db.session.execute(
        select(R.variant_id, func.count()).where(R.campaign_id == campaign_id, R.status == "queued",
                                                 R.variant_id != variant_id).group_by(R.variant_id)).all())
    moves = {labels.get(vid, "none"): n for vid, n in sorted(moves.items(), key=lambda item: labels.get(item[0], ""))}
    fingerprint = "|".join([winner.label, *(f"{v['label']}:{v['sent']}/{v['replied']}" for v in results["variants"]),
                            *(f"{label}>{n}" for label, n in moves.items())])
    return {"campaign": campaign, "winner": winner, "results": results, "moves": moves,
            "moving": sum(moves.values()), "warnings": _warnings(results, winner.label), "fingerprint": fingerprint}


def _warnings(results, winner_label=None):
    minimum = current_app.config["WINNER_MIN_SENT"]
    warnings = []
    rates = {v["label"]: v["reply_rate"] or 0 for v in results["variants"] if v["sent"]}
    if winner_label in rates and rates[winner_label] < max(rates.values()):
        best = max(rates, key=rates.get)
        warnings.append(f"Variant {winner_label} has the lower reply rate: {best} is ahead "
                        f"({rates[best]:.1%} against {rates[winner_label]:.1%}).")
    if results["p_value"] is None:
        warnings.append("There is nothing to compare yet: no variant has texts sent beside another's.")
    elif not results["significant"]:
        warnings.append(f"The difference is not significant (p = {results['p_value']:.4f} by {results['test']}; "
                        "under 0.05 would be): the variants may be equally good, and the one ahead may be "
                        "ahead by chance.")
    small = [f"{v['label']} ({v['sent']})" for v in results["variants"] if v["sent"] < minimum]
    if small:
        warnings.append(f"Too few texts sent to judge: at least {minimum} per variant are needed "
                        f"(WINNER_MIN_SENT); sent so far: {', '.join(small)}.")
    return warnings


def declare_winner(campaign_id, variant_id, fingerprint):
    """Give the winner to everyone not yet texted, exactly as the confirmation showed it: when a
    number changed since (a text went out, a reply came in) nothing moves and the user looks again."""
    preview = winner_preview(campaign_id, variant_id)
    campaign = preview["campaign"]
    if campaign.winner_variant_id is not None:
        raise CampaignError("A winner is already declared: undo it first to choose another.")
    if fingerprint != preview["fingerprint"]:
        raise CampaignError("The numbers changed since the confirmation was shown: check them again.")
    moved = db.session.execute(update(R).where(R.campaign_id == campaign_id, R.status == "queued",
                                               R.variant_id != variant_id).values(variant_id=variant_id)).rowcount
    if moved != preview["moving"]:  # the sender texted someone in between
        db.session.rollback()
        raise CampaignError("The numbers changed since the confirmation was shown: check them again.")
    campaign.winner_variant_id = variant_id
    results = preview["results"]
    audit.record("declare_winner", "campaigns", campaign_id, detail=f"variant {preview['winner'].label}",
                 changes={"winner": preview["winner"].label, "moved": preview["moves"], "test": results["test"],
                          "p_value": results["p_value"], "warnings": preview["warnings"],
                          "variants": {v["label"]: {"sent": v["sent"], "replied": v["replied"]}
                                       for v in results["variants"]}})
    db.session.commit()
    return moved


def undo_winner(campaign_id):
    """Everyone not yet texted goes back to the variant the plan gave them; texts already sent stay sent."""
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign.winner_variant_id is None:
        raise CampaignError("No winner is declared.")
    if campaign.status not in OPEN:
        raise CampaignError(f"A {campaign.status} campaign texts no one else: its winner stays as it was.")
    planned = planned_variant(campaign, R.position)
    restored = db.session.execute(update(R).where(R.campaign_id == campaign_id, R.status == "queued",
                                                  R.variant_id != planned).values(variant_id=planned)).rowcount
    winner = next((v.label for v in campaign.variants if v.id == campaign.winner_variant_id), None)
    campaign.winner_variant_id = None
    audit.record("undo_winner", "campaigns", campaign_id, detail=f"variant {winner}",
                 changes={"winner": winner, "restored": restored})
    db.session.commit()
    return restored
