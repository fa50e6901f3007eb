# %% [markdown]
# # Lesson 01 · `weight` vs `pos_weight`
#
# Questions answered: Q4, Q13, Q14
#
# **Goal.** After this lesson you can say, for any element of a batch, what `weight` and `pos_weight`
# do to its loss *and* to its gradient; give each the right type and shape for a `(N, 1, H, W)`
# output; explain why per-sample weights passed as `pos_weight` did not raise anyone's recall; and
# predict the probability a model trained with `pos_weight` will output.
#
# **How to read it.** Each section asks you to *predict* something before a cell reveals it. Write
# your guess down: being wrong first is what makes it stick. The explorer is live in JupyterLab
# (drag its sliders); on a static page (GitHub) you see its first frame, and the snapshots below the
# check cells show the states they set.

# %%
# %matplotlib widget

# %%
import math

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import bceweights as bw
from bceweights.lessons.explore import LossCurveExplorer, png_image

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
torch.manual_seed(0)


def sig4(value: float) -> str:
    """A number with 4 significant digits, as every printed number in these lessons."""
    return f"{value:.4g}"


# %% [markdown]
# ## 1 · The formula, term by term
#
# For one element with logit $x$, target $y \in [0, 1]$, `weight` $w$ and `pos_weight` $p$,
# `binary_cross_entropy_with_logits` computes
#
# $$
# \begin{aligned}
# \ell(x, y) &= -\,w\,\Big[\, p\,y\,\log\sigma(x) + (1-y)\,\log\big(1-\sigma(x)\big) \Big] \\
# &= w\,\Big[\, p\cdot \underbrace{y\,\mathrm{softplus}(-x)}_{\text{positive term}}
# + \underbrace{(1-y)\,\mathrm{softplus}(x)}_{\text{negative term}} \Big]
# \end{aligned}
# $$
#
# | piece | what it punishes | alive when | multiplied by |
# |---|---|---|---|
# | positive term $y\,\mathrm{softplus}(-x) = -y \log\sigma(x)$ | a low logit | $y > 0$ | $w \cdot p$ |
# | negative term $(1-y)\,\mathrm{softplus}(x) = -(1-y)\log(1-\sigma(x))$ | a high logit | $y < 1$ | $w$ |
#
# So **`weight` scales the whole element; `pos_weight` scales only the positive term.** The
# derivative, which is what training actually uses, keeps the same structure:
#
# $$
# \frac{\partial \ell}{\partial x} \;=\; w\,\Big[(1-y)\,\sigma(x) \;-\; p\,y\,\big(1-\sigma(x)\big)\Big]
# $$
#
# The cell below computes both terms by hand for four elements and checks the result against PyTorch
# and `bceweights`.

# %%
logits = torch.tensor([-2.0, 0.0, 1.5, 3.0])
targets = torch.tensor([1.0, 1.0, 0.0, 0.3])
weights = torch.tensor([1.0, 2.0, 2.0, 0.5])
pos_weight = torch.tensor([4.0])

positive_term = targets * F.softplus(-logits)  # -y * log(sigmoid(x))
negative_term = (1 - targets) * F.softplus(logits)  # -(1 - y) * log(1 - sigmoid(x))
by_hand = weights * (pos_weight * positive_term + negative_term)
from_torch = F.binary_cross_entropy_with_logits(
    logits, targets, weight=weights, pos_weight=pos_weight, reduction="none"
)
from_bw = bw.bce_with_logits(logits, targets, weight=weights, pos_weight=pos_weight, reduction="none")

print(f"{'x':>6}{'y':>6}{'w':>6}{'positive':>10}{'negative':>10}{'by hand':>10}{'torch':>10}{'bceweights':>12}")
columns = (logits, targets, weights, positive_term, negative_term, by_hand, from_torch, from_bw)
for x, y, w, positive, negative, hand, torch_value, bw_value in zip(*(c.tolist() for c in columns)):
    print(
        f"{sig4(x):>6}{sig4(y):>6}{sig4(w):>6}{sig4(positive):>10}{sig4(negative):>10}"
        f"{sig4(hand):>10}{sig4(torch_value):>10}{sig4(bw_value):>12}"
    )
print("by hand == torch == bceweights:", torch.allclose(by_hand, from_torch) and torch.allclose(from_torch, from_bw))

# %% [markdown]
# Read the rows: the element with $y = 0$ (third row) has a zero positive term, so `pos_weight`
# cannot touch it. The soft target $y = 0.3$ (last row) has both terms.
#
# ## 2 · Predict, then reveal: what each argument scales
#
# The explorer below plots one element's loss (left) and its gradient (right) against the logit,
# for $y = 1$ (blue), $y = 0$ (orange) and a soft target, $y = 0.3$ at the start (green); dashed
# faint curves are the plain loss ($w = 1$, $p = 1$). A dotted line marks a *probe* logit where the readouts under the
# plot evaluate everything. It starts at $w = 1$, $p = 1$, probe $x = 0$, where the plain gradients
# for $y = 1$ and $y = 0$ are $-\tfrac12$ and $+\tfrac12$.
#
# **Predict** (write it down):
# 1. Set `pos_weight` to 10. Which of the three gradient curves change? What is the $y = 1$ gradient
#    at $x = 0$ now, and the $y = 0$ one?
# 2. Put `pos_weight` back to 1 and set `weight` to 2. Which curves change now?

# %% tags=["nbval-ignore-output"]
explorer = LossCurveExplorer()
explorer

# %% [markdown]
# Drag `pos_weight` to 10, or run the next cell: it sets the same control from code and prints the
# numbers the explorer shows.

# %%
explorer.set(weight=1.0, pos_weight=1.0)  # the start, even if you moved the sliders
explorer.print_readouts("grad_y1", "grad_y0", "grad_y")
explorer.set(pos_weight=10.0)
explorer.print_readouts("positive_scale", "negative_scale", "grad_y1", "grad_y0", "grad_y")

# %%
explorer.snapshot()

# %% [markdown]
# **Reveal.** The blue $y = 1$ gradient is ten times larger at every logit (−0.5 became −5): its
# only term is the positive one. The orange $y = 0$ curve did not move at all: its positive term is
# multiplied by $y = 0$. The green soft target is in between: its negative part is unchanged and
# its positive part grew tenfold, so at $x = 0$ it went from $+0.2$ to $-1.15$ and changed sign.
# `pos_weight` does not act on *elements*, it acts on the *positive side of the target*.
#
# Now `weight`:

# %%
explorer.set(pos_weight=1.0, weight=2.0)
explorer.print_readouts("positive_scale", "negative_scale", "grad_y1", "grad_y0", "grad_y")

# %%
explorer.snapshot()

# %% [markdown]
# Every gradient doubled, for every target: `weight` scales the whole element. On the loss panel
# the minimum of the green curve (the red star) stayed where it was. So:
#
# * **`weight`** says *how much this element counts*. It also scales the gradient, which is why
#   large weights behave like a larger learning rate (lesson 03 measures that).
# * **`pos_weight`** says *how hard positives pull compared with negatives* inside the loss, and
#   that moves the optimum, as the next section shows.
#
# ## 3 · Where the minimum goes
#
# A soft target $y$ is what an element "sees" when similar inputs are positive a fraction $y$ of the
# time. With $p = 1$ the loss is smallest at probability $y$: the model is calibrated.
#
# **Predict:** take $y = 0.1$ (a 10 % positive region) and `pos_weight` $= 9$, the usual
# negatives/positives ratio for 10 % positives. Where is the minimum now, as a probability?

# %%
explorer.set(weight=1.0, pos_weight=1.0, y=0.1)
before = explorer.readouts["optimal_logit"]
explorer.print_readouts("optimal_probability")
explorer.set(pos_weight=9.0)
explorer.print_readouts("optimal_probability")
print("the optimal logit moved by", sig4(explorer.readouts["optimal_logit"] - before), "= log 9 =", sig4(math.log(9.0)))

# %%
explorer.snapshot()

# %% [markdown]
# **Reveal.** Setting the gradient to zero, $(1-y)\,\sigma = p\,y\,(1-\sigma)$, gives
#
# $$
# \sigma(x^{\star}) = \frac{p\,y}{p\,y + 1 - y}, \qquad x^{\star} = \log\frac{y}{1-y} + \log p .
# $$
#
# `pos_weight` moves the best logit by $\log p$ everywhere; a `weight` that is the same for every label
# an input can have does not move it at all (it multiplies both sides of the equation). A weight that
# depends on the label does: it changes the balance like `pos_weight` (section 6, recipe (c)). With $p$ = negatives/positives, a region with exactly the
# base rate of positives lands on probability 0.5: thresholding the weighted model at 0.5 is
# thresholding a calibrated model at $1/(1+p) = 0.1$. That is where the extra recall comes from.
#
# For a hard label the minimum is at infinity whatever $p$ is, as the arrow on the panel edge shows:

# %%
explorer.set(y=1.0)
explorer.print_readouts("optimal_logit", "optimal_probability")

# %%
explorer.snapshot()

# %% [markdown]
# `pos_weight` never changes where a lone positive wants to go; it changes how hard it pulls. The
# shift appears when the same kind of input comes with both labels, which is exactly the situation
# of an imbalanced problem with overlapping classes.
#
# ## 4 · Q4: shapes for a `(N, 1, H, W)` output
#
# Both arguments broadcast against the input, lining up trailing dimensions:
#
# * `weight`: anything that broadcasts to `(N, 1, H, W)`: per pixel `(N, 1, H, W)`, per image
#   `(N, 1, 1, 1)`, or one number. A mask stored as `(N, H, W)` needs `.unsqueeze(1)` first.
# * `pos_weight`: meant as one value **per channel**. With one channel that is a one-element tensor,
#   `torch.tensor([p])` of shape `(1,)` (or `(1, 1, 1)`); `bceweights` also takes a plain number.

# %%
generator = torch.Generator().manual_seed(4)
N, H, W = 2, 4, 4
seg_logits = torch.randn(N, 1, H, W, generator=generator)
seg_target = (torch.rand(N, 1, H, W, generator=generator) < 0.2).float()
mask = (torch.rand(N, H, W, generator=generator) < 0.5).float()  # an (N, H, W) weight map

cases = {
    "weight per pixel, mask.unsqueeze(1)  (N, 1, H, W)": dict(weight=mask.unsqueeze(1)),
    "weight per image                     (N, 1, 1, 1)": dict(weight=torch.tensor([1.0, 3.0]).view(N, 1, 1, 1)),
    "pos_weight for the channel           (1,)": dict(pos_weight=torch.tensor([10.0])),
    "pos_weight for the channel           (1, 1, 1)": dict(pos_weight=torch.tensor([10.0]).view(1, 1, 1)),
}
for name, operands in cases.items():
    torch_loss = F.binary_cross_entropy_with_logits(seg_logits, seg_target, **operands)
    bw_loss = bw.bce_with_logits(seg_logits, seg_target, **operands)
    print(f"{name}  torch {sig4(float(torch_loss))}  bceweights {sig4(float(bw_loss))}")

# %% [markdown]
# And the mask without its channel dimension. `(N, H, W)` against `(N, 1, H, W)` lines up `N` with the
# channel axis, so the two shapes *do* broadcast, to `(N, N, H, W)`: every image's mask would weight
# every image. PyTorch fails only because it multiplies the loss by the weight in place, and a tensor
# cannot grow in place (the first line below). With `N = 1` nothing fails and the mask weights the
# right image by luck (lesson 10 shows that trap). `bceweights` says what it saw and what to write:

# %%
try:
    F.binary_cross_entropy_with_logits(seg_logits, seg_target, weight=mask)
except RuntimeError as error:
    print("PyTorch:", str(error).splitlines()[0])
try:
    bw.bce_with_logits(seg_logits, seg_target, weight=mask)
except bw.WeightShapeError as error:
    print("bceweights:", error)

# %% [markdown]
# `bw.explain` shows how each operand lines up with the input (lesson 02 goes further):

# %%
print(bw.explain(seg_logits, seg_target, weight=mask.unsqueeze(1), pos_weight=10.0))

# %% [markdown]
# ## 5 · Q13: `pos_weight=10` raises an error
#
# **Predict:** what does PyTorch say to a plain number?

# %%
labels = (torch.rand(8, 1, generator=generator) < 0.3).float()
outputs = torch.randn(8, 1, generator=generator)  # a single-output model: (N, 1)

for attempt in ("functional", "module"):
    try:
        if attempt == "functional":
            F.binary_cross_entropy_with_logits(outputs, labels, pos_weight=10)
        else:
            torch.nn.BCEWithLogitsLoss(pos_weight=10)
    except TypeError as error:
        print(f"{attempt:>10}: TypeError: {error}")

# %% [markdown]
# PyTorch wants a **tensor**. For a single-output model with outputs `(N, 1)`, use a one-element
# tensor, `torch.tensor([10.0])`: shape `(1,)` lines up with the last dimension (the one channel)
# and is shared by all `N` rows. On a GPU it must live on the same device as the outputs:
# `nn.BCEWithLogitsLoss` registers it as a buffer, so `criterion.to(device)` moves it. `bceweights`
# accepts the number as it is:

# %%
reference = F.binary_cross_entropy_with_logits(outputs, labels, pos_weight=torch.tensor([10.0]))
print("torch, torch.tensor([10.]) :", sig4(float(reference)))
print("bceweights, pos_weight=10  :", sig4(float(bw.bce_with_logits(outputs, labels, pos_weight=10))))
print("bw.BCEWithLogits(pos_weight=10):", sig4(float(bw.BCEWithLogits(pos_weight=10)(outputs, labels))))

# %% [markdown]
# ## 6 · Q14: per-sample weights as `pos_weight`, one `pos_weight`, or class weights as `weight`?
#
# A classifier with about 10 % positives. A common recipe computes the class shares
# `shares = [positive share, negative share]` (here ≈ `[0.11, 0.89]`) and indexes them by label,
# giving each sample the share of the *other* class. Three ways to use that, or the ratio:
#
# * **(a)** `pos_weight = shares[labels]`: per-sample values passed as `pos_weight`;
# * **(b)** `pos_weight = negatives / positives`: one number;
# * **(c)** `weight = shares[labels]`: the same per-sample values passed as `weight`.
#
# **Predict:** which of them raise recall compared with no weighting? Do any two give the same model?

# %%
def make_blobs(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two overlapping 2-D Gaussian blobs, about 10 % positives: features (n, 2), labels (n, 1)."""
    labels = (torch.rand(n, 1, generator=generator, dtype=torch.float64) < 0.1).double()
    centre_pos = torch.tensor([1.2, 1.0], dtype=torch.float64)
    centre_neg = torch.tensor([-0.3, -0.2], dtype=torch.float64)
    centres = torch.where(labels.bool(), centre_pos, centre_neg)
    return centres + torch.randn(n, 2, generator=generator, dtype=torch.float64), labels


data_generator = torch.Generator().manual_seed(14)
train_x, train_y = make_blobs(4000, data_generator)
test_x, test_y = make_blobs(4000, data_generator)
positives = float(train_y.sum())
negatives = len(train_y) - positives
shares = torch.tensor([positives, negatives], dtype=torch.float64) / len(train_y)
per_sample = shares[train_y.long()].view_as(train_y)  # positives get the negative share (about 0.89), negatives the positive share (about 0.11)
print(f"positives: {sig4(positives / len(train_y))} of the data, negatives/positives = {sig4(negatives / positives)}")
print("shares [positive, negative]:", [sig4(float(s)) for s in shares])


def train_and_score(**loss_options) -> tuple[float, float, float]:
    """Fit a logistic model (2 features -> 1 logit) with Adam; precision, recall and bias on the test set."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        bw.bce_with_logits(model(train_x), train_y, **loss_options).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = (model(test_x) > 0).double()  # threshold 0.5 on the probability
    true_positives = float((predicted * test_y).sum())
    precision = true_positives / max(float(predicted.sum()), 1.0)
    recall = true_positives / float(test_y.sum())
    return precision, recall, model.bias.item()


recipes = {
    "no weights": {},
    "(a) pos_weight = shares[labels]": dict(pos_weight=per_sample),
    "(b) pos_weight = neg / pos": dict(pos_weight=negatives / positives),
    "(c) weight = shares[labels]": dict(weight=per_sample),
}
print(f"{'':34}precision  recall    bias")
for name, options in recipes.items():
    precision, recall, bias = train_and_score(**options)
    print(f"{name:34}{sig4(precision):>9}{sig4(recall):>8}{sig4(bias):>8}")

# %% [markdown]
# **Reveal, from the formula.** Write out each recipe's loss for a negative and for a positive:
#
# * **(a)** A negative has $y = 0$: its positive term is $0 \cdot \mathrm{softplus}(-x)$, so
#   whatever `pos_weight` value it carries (the positive share, $0.11$) multiplies zero and never
#   matters. A positive carries `pos_weight` $= 0.89$, the negative share. Recipe (a) is therefore
#   *exactly* one `pos_weight` of $0.89$ for everybody: positives count slightly **less** than with
#   no weighting, so recall should not rise; here it even dropped a little, and the bias sits below the
#   unweighted model's, heading for $\log 0.8928 \approx -0.11$ at the optimum (the table's biases differ by
#   −0.111; 300 Adam steps get most of the way there, and how far depends on the starting weights).
# * **(b)** Positives count $8.3\times$: the optimum moves up by $\log 8.3$ (section 3), more
#   test points cross 0.5, recall rises and precision falls.
# * **(c)** Negatives $\times 0.11$, positives $\times 0.89$: the positive/negative balance is
#   $0.89 / 0.11 = 8.3$, the same as (b), times an overall factor $0.11$ (the positive share). The
#   loss is exactly $0.11 \times$ loss (b), so it has the same minimiser; Adam ignores a constant
#   gradient scale and lands on the same model. With plain SGD, (c) would take about nine times
#   smaller steps ($1 / 0.11$).
#
# The next cell checks both identities numerically on random logits:

# %%
some_logits = torch.randn(len(train_y), 1, generator=generator, dtype=torch.float64)
loss_a = bw.bce_with_logits(some_logits, train_y, pos_weight=per_sample, reduction="none")
loss_one_value = bw.bce_with_logits(some_logits, train_y, pos_weight=float(shares[1]), reduction="none")
print("(a) == one pos_weight of", sig4(float(shares[1])), ":", torch.allclose(loss_a, loss_one_value))
loss_b = bw.bce_with_logits(some_logits, train_y, pos_weight=negatives / positives)
loss_c = bw.bce_with_logits(some_logits, train_y, weight=per_sample)
print("loss (c) == positive share x loss (b):", torch.allclose(loss_c, shares[0] * loss_b))

# %% [markdown]
# So the recipe in (a) is not a weaker version of (b): it is one `pos_weight` of 0.89, below 1, so it
# pushes the opposite way from (b). If you want per-sample
# class weights, pass them as `weight` (c); if you want to shift the balance of one output, pass one
# `pos_weight` (b).
#
# ## 7 · The optimum shift on a trained model
#
# Section 3 found the optimum for one element. Does a model trained with `pos_weight` really output
# $p\,q/(p\,q + 1 - q)$ where a fraction $q$ of inputs is positive? Make data where $q$ is known:
# a feature $x$ uniform on $[-3, 3]$ and labels drawn with probability $q(x) = \sigma(1.5\,x - 1)$.
# Fit a logistic model with $p = 1, 4, 16$ and compare its probabilities with $q$ at twelve inputs.
#
# **Predict:** with $p = 16$, what does the model output where $q = 0.5$?

# %%
shift_generator = torch.Generator().manual_seed(7)
feature = torch.rand(20000, 1, generator=shift_generator, dtype=torch.float64) * 6 - 3


def true_frequency(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(1.5 * x - 1.0)


outcome = (torch.rand(feature.shape, generator=shift_generator, dtype=torch.float64) < true_frequency(feature)).double()
# Where to compare: inputs whose true frequency q is one of these (x = (logit(q) + 1) / 1.5).
probe_q = torch.tensor([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95], dtype=torch.float64)[:, None]
probe_x = (torch.logit(probe_q) + 1.0) / 1.5


def fit_logistic(pos_weight: float) -> torch.nn.Linear:
    """A 1-feature logistic model fitted with L-BFGS to the weighted loss (deterministic)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1).double()
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = bw.bce_with_logits(model(feature), outcome, pos_weight=pos_weight)
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


predictions = {}
corrected = {}
biases = {}
for p in (1.0, 4.0, 16.0):
    model = fit_logistic(p)
    with torch.no_grad():
        model_logits = model(probe_x)
    predictions[p] = torch.sigmoid(model_logits)
    corrected[p] = torch.sigmoid(model_logits - math.log(p))  # subtract log p from the logit
    biases[p] = model.bias.item()

half = int(torch.argmin((probe_q - 0.5).abs()))  # the input where q = 0.5
print(
    f"where q = 0.5 the model trained with p = 16 predicts {sig4(float(predictions[16.0][half]))}; "
    f"theory {sig4(float(bw.optimal_probability(probe_q[half], 16.0)))}"
)
print(" p   bias shift  log p   max |pred - q|  max |pred - theory|  max |corrected - q|")
for p in predictions:
    theory = bw.optimal_probability(probe_q, p)
    print(f"{p:>2g}{sig4(biases[p] - biases[1.0]):>12}{sig4(math.log(p)):>7}"
          f"{sig4(float((predictions[p] - probe_q).abs().max())):>16}"
          f"{sig4(float((predictions[p] - theory).abs().max())):>21}"
          f"{sig4(float((corrected[p] - probe_q).abs().max())):>21}")

# %%
figure = Figure(figsize=(9.0, 3.6), dpi=90)
left, right = figure.subplots(1, 2)
q_line = torch.linspace(0.0, 1.0, 201, dtype=torch.float64)
colors = {1.0: "tab:gray", 4.0: "tab:blue", 16.0: "tab:red"}
for p, color in colors.items():
    left.plot(q_line, bw.optimal_probability(q_line, p), color=color, linewidth=1.2, alpha=0.6)
    left.plot(probe_q.ravel(), predictions[p].ravel(), "o", color=color, label=f"pos_weight {p:g}")
    right.plot(probe_q.ravel(), corrected[p].ravel(), "o", color=color, alpha=0.7, label=f"pos_weight {p:g}")
right.plot([0, 1], [0, 1], color="0.5", linewidth=1.0)
left.set_title("trained model (dots) vs p·q / (p·q + 1 − q) (lines)")
right.set_title("after subtracting log p from the logit")
for axes in (left, right):
    axes.set_xlabel("true frequency of positives q")
    axes.set_ylabel("predicted probability")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.legend(loc="lower right", fontsize=8)
figure.subplots_adjust(left=0.07, right=0.99, bottom=0.14, top=0.9, wspace=0.25)
png_image(figure)

# %% [markdown]
# **Reveal.** The dots sit on the curves: the trained model predicts $p\,q/(p\,q + 1 - q)$, not
# $q$. Where half the inputs are positive, the $p = 16$ model says about $0.94$. The bias moved by
# almost exactly $\log p$ (what is left is estimation noise on 20 000 samples), and subtracting
# $\log p$ from the logit puts every model back on the diagonal. Here a model trained with
# `pos_weight` is a *shifted* calibrated model: keep the shift in mind when you read its
# probabilities, or undo it.
#
# That holds because this model can represent the truth: the labels were drawn from a logistic
# function of $x$, so the logistic fit is well specified, and a flexible enough network is in the same
# position. A model too rigid to fit $q(x)$ is not calibrated to begin with, and `pos_weight` also
# changes which of its errors it prefers; then subtracting $\log p$ gives an approximation, not the
# unweighted model.
#
# ## 8 · Summary
#
# * Per element, $\ell = w\,[\,p\,y\,\mathrm{softplus}(-x) + (1-y)\,\mathrm{softplus}(x)\,]$.
#   `weight` scales both terms (how much the element counts, and the gradient's size); `pos_weight`
#   scales only the positive term (the balance between positives and negatives).
# * `pos_weight` moves the optimal logit by $\log p$: a model flexible enough to reach the optimum
#   (or well specified, like the logistic fit of section 7) outputs $p\,q/(p\,q + 1 - q)$ instead of
#   $q$. A `weight` that does not depend on the label does not move the optimum; one that does (recipe
#   (c) of section 6) shifts the balance like `pos_weight`.
# * For `(N, 1, H, W)` outputs: `weight` broadcastable to the input (e.g. `mask.unsqueeze(1)`),
#   `pos_weight` one value for the channel: `torch.tensor([p])` in PyTorch (Q13), a number in
#   `bceweights`.
# * Per-sample values indexed by label and passed as `pos_weight` reduce to one `pos_weight` (the
#   value the positives carry): negatives ignore it. Pass per-sample class weights as `weight`, or
#   one ratio as `pos_weight` (Q14).
#
# ## 9 · Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula, the explorers above, or
# a few lines of PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says
# what it would mean. When you have tried, `show_solution("01.2")` prints the worked solution of exercise
# 01.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON01_1_QUESTION,
    LESSON01_2_QUESTION,
    LESSON01_3_QUESTION,
    LESSON01_4_QUESTION,
    check_lesson01_1,
    check_lesson01_2,
    check_lesson01_3,
    check_lesson01_4,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **01.1** Use the formula of section 3, or the explorer: its soft target `y` plays the role of $q$ (it has a `weight` slider too: does it matter?).

# %%
print(LESSON01_1_QUESTION)
my_probability = None
_ = check_lesson01_1(my_probability)

# %% [markdown]
# **01.2** Transfer: a soft target and both arguments at once. Use the derivative of section 1.

# %%
print(LESSON01_2_QUESTION)
my_gradient = None
_ = check_lesson01_2(my_gradient)

# %% [markdown]
# **01.3** Transfer: read a weighted model's output as a frequency, the reverse of section 7.

# %%
print(LESSON01_3_QUESTION)
my_frequency = None
_ = check_lesson01_3(my_frequency)

# %% [markdown]
# **01.4** A concept: which setting moves the optimum? Answer from the formula of sections 1 and 3, without training anything.

# %%
print(LESSON01_4_QUESTION)
my_choice = None
_ = check_lesson01_4(my_choice)

# %% [markdown]
# ## 10 · Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, from memory first, then check
# with the cells above. When you have tried, `show_solution("01.Q")` prints the answers.

# %%
print_questionnaire("01")
