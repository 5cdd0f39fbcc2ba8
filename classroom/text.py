"""Student-facing explanations shown next to the controls and plots."""

INTRO = """
# GAN Classroom — watch a GAN learn
Two networks play a game. The **generator G** turns random noise *z* into fake samples;
the **discriminator D** looks at a sample and outputs how likely it is to be **real**.
D is trained to tell real from fake, G is trained to fool D. Press **Start** and watch the duel.
"""

CONTROLS_HELP = """
**Setup** (used by *Start* and *Reset*): the data to imitate, the network size, the batch size and
the random seed. The same seed gives the same run.

**Lecture controls**: *Speed* slows the running GAN to 100, 10 or 1 step per second without
restarting it (at 10 and 1 every step is drawn). *Step* runs one full step (k D updates, then one
G update); *Step D only* / *Step G only* update one player once while the other stays frozen:
after a D step the samples plot draws D's D = 0.5 line before the step (red, dashed) and after it
(red, solid), after a G step green trails from where G's samples were to where they are (the raw
G's when the run keeps an EMA of G: the orange points follow it only slowly).
*Draw your own data* turns a drawing into 2,000 points (like a CSV upload): press Start to train on it.

**Live controls** change the *running* GAN at the next step — no restart, weights and Adam's
memory are kept:
- **Learning rates** (log₁₀ scale, −3 = 0.001): how big a step each player takes.
  Make D's 10× larger and watch D(G(z)) fall: D gets too strong and G's gradient vanishes.
  Most setups also use **lr decay**: the rate in effect shrinks linearly during the run (e.g. to 5%
  of the slider's value by step 50,000 on the rings) so the end of a run settles. The status line
  shows the rate in effect now whenever it differs from the sliders.
- **k, D steps per G step**: D trains *k* times for every G update (Goodfellow et al., 2014).
  WGAN-GP uses k = 5 so the critic stays close to optimal.
- **Label smoothing**: train D towards 0.9 instead of 1 on real data (Salimans et al., 2016).
  An over-confident D gives G useless gradients; smoothing keeps D's answers soft.
  *Two-sided* also moves the fake target from 0 to the same amount.
- **Loss**: *non-saturating* (G maximises log D(G(z))) is the default; *minimax* is the
  original formula, whose gradient vanishes when D rejects G's samples — try it and watch G stall.
"""

PLOTS_HELP = """
- **Real vs generated points**: blue = real data, orange = G's samples from a fixed noise batch —
  from the *EMA of G's weights* when the run keeps one (a smoothed G, what the benchmarks score);
  the histograms of D show the raw G that D is playing against.
  The background is D's opinion (red = "fake", blue = "real"); black ticks show where G's gradient
  pushes each fake point. When G has won, the orange points sit on the blue ones and the background
  is flat at **0.5**: D cannot tell. A background flat at *another* value (say 0.38), with one bar in
  the histogram, means something else: **D has collapsed** to a constant (often after a too-large D
  learning rate) and gives G no signal — an alert says so and offers to lower D's learning rate.
  The purple grid is **G's manifold**: where G sends a flat square grid of noise vectors
  z = (z₁, z₂, 0, …, 0) with z₁, z₂ from −2 to 2 (a 2-D slice through the noise space; the other
  coordinates stay 0). Watch G stretch and fold this sheet to lay it over the data.
  After a single update, and at every step in slow motion (10 or 1 step/s), the plot shows what it
  changed: D's D = 0.5 line before (red, dashed) and now (red, solid), and green trails from where
  G's samples were to where they are (the raw G's, when the orange points are the EMA of G).
- **What D thinks**: histograms of D's output on real samples D(x) and on fakes D(G(z)).
  At the **Nash equilibrium** the fakes are indistinguishable and D outputs **0.5** everywhere.
  Two separate humps near 1 and 0 mean D is winning.
- **Losses**: D's and G's losses. They need not go down — it is a game — but they should hover
  near the dashed equilibrium values (D: 2·log 2 ≈ 1.39, G: log 2 ≈ 0.69). D loss → 0 means D is
  too strong; wild swings mean the learning rates are too high (oscillation).
- **Mode coverage**: for the ring and grid we know the true modes. A sample is *high quality* if it lands
  within 3σ of a mode; a mode counts as covered if at least one high-quality sample is nearest to it
  (VEEGAN/PacGAN metric, 2,500 samples). So early on, many modes can be "covered" while only 0.3% of
  samples are good: read both numbers. **Mode collapse** = G covers only a few modes.
- **Game value V(D,G)** (status line) = E log D(x) + E log(1 − D(G(z))), the quantity D maximises and
  G minimises (Goodfellow et al., 2014, Eq. 1). At the equilibrium D outputs 0.5 everywhere, so
  V = 2·log 0.5 = −log 4 ≈ −1.39. Higher (nearer 0) means D is telling real from fake.
- **Dotted vertical lines** on the loss and mean-D plots mark live changes (loss, learning rates, k,
  smoothing) at the step they took effect.
"""

CLASS_HELP = """
**Teach a class.** *Start a class* gives you two links: a **student link** to share (each student
who opens it trains their own GAN, as on this page) and a **teacher link**, for you only, that
opens the **class view**: every student's GAN at a glance, a lesson or settings pushed to all,
pause and resume all, controls hidden from the class, and a *class experiment* (each student one
value of a hyperparameter; the outcome plotted across the class).
"""

CLASS_VIEW_START = """
**Class view** (open it from the *teacher link* that **Start a class** gave you). Click a student to
project their run; the controls on the right act on the whole class.
"""
