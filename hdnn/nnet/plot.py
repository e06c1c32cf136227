"""Training curves as a PNG: loss and frame accuracy per epoch, train and CV."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hdnn.errors import atomic_path  # noqa: E402


def plot_curves(history, path):
    """Plot ``Trainer.history`` (list of per-epoch dicts) to ``path``, atomically."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    trained = [h for h in history if "train" in h]
    for key, style in (("train", "o-"), ("cv", "s-")):
        rows = [h for h in history if key in h]
        epochs = [h["epoch"] for h in rows]
        ax_loss.plot(epochs, [h[key]["loss"] for h in rows], style, label=key)
        ax_acc.plot(epochs, [100 * h[key]["accuracy"] for h in rows], style, label=key)
    rejected = [h for h in trained if not h["accepted"]]
    if rejected:
        ax_loss.plot([h["epoch"] for h in rejected], [h["cv"]["loss"] for h in rejected], "rx",
                     markersize=10, label="rejected")
    ax_loss.set(xlabel="epoch", ylabel="loss per frame", title="objective")
    ax_acc.set(xlabel="epoch", ylabel="frame accuracy (%)", title="frame accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
