"""Working in latent space: encode a data set, class centroids, straight paths, PCA baseline."""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_codes, check_count, check_images, check_labels
from ..models.registry import is_conditional
from ..utils import batched

__all__ = [
    "encode", "decode", "reconstruct", "centroids", "distance_matrix", "nearest_classes",
    "neighbour_rank", "neighbour_phrase", "claim_ranks", "style_alignment", "line_path", "tour", "FittedGaussian", "LatentFlow", "PCA",
    "CodePlane", "grid_codes", "class_borders", "encode_gaussian", "CodeCache", "discriminate", "frame_changes", "midpoint_norms",
]


def _labels(model: nn.Module, y: torch.Tensor | None, n: int, what: str) -> tuple[torch.Tensor, ...]:
    """The class tensor a conditional model needs (as a one-tuple), checked; none for any other model."""
    if not is_conditional(model):
        return ()
    if y is None:
        raise ValueError(f"a conditional model needs the class of every {what} (y)")
    n_classes = getattr(getattr(model, "config", None), "n_classes", None)
    if n_classes is not None:
        check_labels(y, n_classes, batch=n, values=True)
    return (y,)


def encode(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
           batch_size: int | None = None) -> torch.Tensor:
    """Deterministic latent codes ``(N, D)`` of images ``(N, 1, 28, 28)``; a conditional model is given the
    classes ``y`` ``(N,)``.

    Uses ``model.embed``: the code z for an AE, the posterior mean for a VAE.
    """
    check_images(x, values=True)  # once, on the whole input, before its batches move to the model's device
    return batched(model, model.embed, x, *_labels(model, y, len(x), "image"), batch_size=batch_size)


def decode(model: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None,
           batch_size: int | None = None) -> torch.Tensor:
    """Images in [0, 1] ``(N, 1, 28, 28)`` decoded from codes ``(N, D)``; drawn as classes ``y`` ``(N,)`` by a
    conditional model (an unconditional one ignores ``y``: its class is in ``z``)."""
    check_codes(z, getattr(getattr(model, "config", None), "latent_dim", None))
    return batched(model, model.generate, z, *_labels(model, y, len(z), "code"), batch_size=batch_size)


def reconstruct(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None,
                batch_size: int | None = None) -> torch.Tensor:
    """Deterministic reconstructions in [0, 1] of images ``(N, 1, 28, 28)``, computed where the model is;
    a conditional model is given the classes ``y``."""
    check_images(x, values=True)
    return batched(model, model.reconstruct, x, *_labels(model, y, len(x), "image"), batch_size=batch_size)


def discriminate(model: nn.Module, x: torch.Tensor, batch_size: int | None = None):
    """The discriminator's verdict on images ``(N, 1, 28, 28)`` of a GAN or VAE-GAN, in batches, on the CPU:
    a :class:`~genvae.models.gan.DiscriminatorOutput` with ``logits`` ``(N,)`` and ``features`` ``(N, F)``
    (the features the VAE-GAN compares images in)."""
    check_images(x, values=True)
    return batched(model, model.discriminate, x, batch_size=batch_size)


def frame_changes(frames: torch.Tensor) -> torch.Tensor:
    """Mean squared pixel change between consecutive frames ``(F, 1, 28, 28)`` of a path: ``(F - 1,)``."""
    check_images(frames, values=False)
    if len(frames) < 2:
        raise ValueError(f"a change needs at least 2 frames, got {len(frames)}")
    return (frames[1:] - frames[:-1]).pow(2).flatten(1).mean(1)


def midpoint_norms(dims, n: int = 10_000, seed: int = 0) -> list[dict[str, float]]:
    """How atypical the midpoint of a straight line between two noise draws is, per dimension D in ``dims``.

    For z0, z1 ~ N(0, I_D), the midpoint (z0 + z1) / 2 is N(0, I_D / 2): its length is close to sqrt(D / 2),
    about 71% of a typical draw's sqrt(D) at every D. What grows with D is how far outside the typical
    lengths that is: the lengths of draws spread by about 0.71 whatever D is, so the gap, counted in
    standard deviations of the typical length, grows like sqrt(D). One row per D, from ``n`` seeded pairs:
    the mean midpoint length, the mean and standard deviation of a draw's length, their ratio and the gap
    in standard deviations.
    """
    g = torch.Generator().manual_seed(seed)
    rows = []
    for d in dims:
        d = check_count(d, "D")
        z0, z1 = torch.randn(2, n, d, generator=g, dtype=torch.float64)
        mid = ((z0 + z1) / 2).norm(dim=1)
        typical = z0.norm(dim=1)
        mean, sd = float(typical.mean()), float(typical.std())
        rows.append({"D": d, "midpoint length": float(mid.mean()), "typical length": mean,
                     "typical spread (sd)": sd, "ratio": float(mid.mean()) / mean,
                     "gap (sd)": (mean - float(mid.mean())) / sd})
    return rows


def centroids(z: torch.Tensor, y: torch.Tensor, n_classes: int | None = None) -> torch.Tensor:
    """Class means c(k) = mean of the codes of class k, ``(K, D)``."""
    check_codes(z, name="codes z")
    check_labels(y, batch=len(z), name="labels y")
    if len(y) == 0:
        raise ValueError("no codes: cannot take centroids of an empty set")
    n_classes = n_classes or int(y.max()) + 1
    missing = [k for k in range(n_classes) if not (y == k).any()]
    if missing:
        raise ValueError(f"no points of class(es) {missing}: cannot take their centroid")
    return torch.stack([z[y == k].mean(0) for k in range(n_classes)])


def distance_matrix(c: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between centroids, ``(K, K)`` with a zero diagonal."""
    return torch.cdist(c[None].double(), c[None].double())[0]


def nearest_classes(dist: torch.Tensor, k: int) -> list[int]:
    """The other classes ordered from nearest to farthest from class ``k``."""
    order = torch.argsort(dist[k]).tolist()
    return [j for j in order if j != k]


def neighbour_rank(dist: torch.Tensor, a: int, b: int) -> int:
    """Where class ``b`` ranks among the neighbours of class ``a``: 1 = nearest, K-1 = farthest."""
    return nearest_classes(dist, a).index(b) + 1


def neighbour_phrase(dist: torch.Tensor, a: int, b: int, top: int) -> str:
    """Chapter 3's clause about one claim: the ``top`` classes nearest to class ``a``, nearest first, and the
    rank of class ``b`` among all of ``a``'s neighbours (:func:`neighbour_rank`), for distances ``dist``
    ``(K, K)`` between class centroids (:func:`distance_matrix`).

        >>> dist = distance_matrix(torch.tensor([[0.0], [1.0], [3.0], [6.0]]))  # four classes on a line
        >>> neighbour_phrase(dist, 0, 3, top=2)
        'the 2 classes nearest to the average 0 are, nearest first, 1 and 2, and 3 has rank 3'
    """
    if not 1 <= top < len(dist):
        raise ValueError(f"top must be between 1 and {len(dist) - 1} (the other classes), got {top}")
    near = nearest_classes(dist, a)
    return (f"the {top} classes nearest to the average {a} are, nearest first, "
            f"{', '.join(map(str, near[:top - 1]))}{' and ' if top > 1 else ''}"
            f"{near[top - 1]}, and {b} has rank {neighbour_rank(dist, a, b)}")


def line_path(c_a: torch.Tensor, c_b: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Points on r(d) = c_a + d * t, t = (c_b - c_a) / ||c_b - c_a||, for d in [0, ||c_b - c_a||].

    Returns ``(n_frames, D)``, evenly spaced, first row c_a and last row c_b.
    """
    n_frames = check_count(n_frames, "n_frames", minimum=2)
    if c_a.dim() != 1 or c_a.shape != c_b.shape:
        raise ValueError(f"c_a and c_b must be two points of one space, (D,) each, got {tuple(c_a.shape)} and "
                         f"{tuple(c_b.shape)}")
    delta = c_b - c_a
    length = delta.norm()
    if length == 0:
        raise ValueError("the two points coincide: the direction is undefined")
    t_hat = delta / length
    d = torch.linspace(0, 1, n_frames, dtype=c_a.dtype) * length  # (F,)
    return c_a + d[:, None] * t_hat  # (F, D)


def tour(c: torch.Tensor, order: list[int], frames_per_leg: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Join straight paths through the centroids in ``order`` (e.g. 0, 1, ..., 9).

    Returns the stacked points and, per point, the ``(a, b)`` leg it lies on.
    The shared endpoint of two legs appears once.
    """
    if len(order) < 2 or any(not 0 <= int(k) < len(c) for k in order):
        raise ValueError(f"a tour needs at least two of the {len(c)} centroids' indices (0 to {len(c) - 1}), got {list(order)}")
    points, legs = [], []
    for i, (a, b) in enumerate(zip(order[:-1], order[1:])):
        path = line_path(c[a], c[b], frames_per_leg)
        path = path if i == 0 else path[1:]
        points.append(path)
        legs += [(a, b)] * len(path)
    return torch.cat(points), legs


class FittedGaussian:
    """A Gaussian with the mean and covariance of a set of codes ``(N, D)``.

    The fairest way to "sample" a plain autoencoder, which has no prior: fit a
    Gaussian to its training codes after training, draw from it, decode.
    """

    def __init__(self, z: torch.Tensor):
        check_codes(z)
        if len(z) < 2:
            raise ValueError(f"fitting a Gaussian needs at least 2 codes, got {len(z)}")
        self.mean = z.mean(0)
        self.cov = torch.cov(z.T).reshape(z.shape[1], z.shape[1])
        jitter = 1e-6 * self.cov.diagonal().mean() * torch.eye(z.shape[1])
        self._chol = torch.linalg.cholesky(self.cov + jitter)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes ``(n, D)``, drawn with ``generator`` (never the global RNG's state)."""
        eps = torch.randn(n, len(self.mean), generator=generator)
        return self.mean + eps @ self._chol.T


class LatentFlow:
    """Flow matching on a set of codes ``(N, D)``: a small MLP velocity field carries N(0, I) to the codes'
    distribution, the next step after :class:`FittedGaussian` (which can only match their mean and covariance).

    The codes are standardised (each dimension to mean 0, standard deviation 1) before fitting, and sampling
    undoes it (``standardise=False`` fits the codes as they are). Fitting is a plain loop of ``steps`` Adam steps on random batches, all drawn from a generator
    seeded with ``seed`` (the network's initial weights too), so a fit is repeatable and leaves the global
    random state alone. ``losses`` holds the loss of every step; ``seconds`` the fit's time.
    """

    def __init__(self, z: torch.Tensor, steps: int = 3000, batch_size: int = 256, lr: float = 2e-3,
                 hidden: tuple[int, ...] = (256, 256), seed: int = 0, standardise: bool = True):
        import time

        from ..models.flow import LatentVelocity

        check_codes(z)
        steps, batch_size = check_count(steps, "steps"), check_count(batch_size, "batch_size")
        if len(z) < 2:
            raise ValueError(f"fitting a flow needs at least 2 codes, got {len(z)}")
        z = z.detach().float().cpu()
        if standardise:
            self.mean, self.std = z.mean(0), z.std(0).clamp_min(1e-6)
        else:
            self.mean, self.std = torch.zeros(z.shape[1]), torch.ones(z.shape[1])
        data = (z - self.mean) / self.std  # (N, D)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.velocity = LatentVelocity(z.shape[1], hidden)
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.velocity.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        losses = torch.empty(steps)
        t0 = time.perf_counter()
        with torch.enable_grad():  # a fit asked for inside torch.no_grad() (a sampler built lazily) still trains
            self._fit(data, steps, batch_size, g, opt, sched, losses)
        self.seconds = time.perf_counter() - t0
        self.losses = losses
        self.velocity.eval().requires_grad_(False)

    def _fit(self, data, steps, batch_size, g, opt, sched, losses) -> None:
        from ..models.flow import conditional_path, latent_flow_loss

        for i in range(steps):
            x1 = data[torch.randint(len(data), (batch_size,), generator=g)]  # (B, D) codes
            x0 = torch.randn(x1.shape, generator=g)  # (B, D) noise
            t = torch.rand(batch_size, generator=g)  # (B,)
            x_t, v = conditional_path(x0, x1, t)
            loss = latent_flow_loss(self.velocity(x_t, t), v)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses[i] = loss.detach()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int = 50,
               solver: str = "heun") -> torch.Tensor:
        """``n`` codes ``(n, D)``: noise drawn with ``generator``, carried by the ODE in ``steps`` solver steps."""
        from ..models.flow import integrate

        x = torch.randn(check_count(n), len(self.mean), generator=generator)
        return integrate(self.velocity, x, steps, solver) * self.std + self.mean


class PCA:
    """Principal component analysis of flattened images: the linear baseline for an AE.

    With d components it is the best *linear* d-dimensional autoencoder: encode
    = project on the top-d principal directions, decode = map back.
    """

    def __init__(self, n_components: int):
        self.n_components = n_components

    def fit(self, x: torch.Tensor) -> "PCA":
        flat = x.flatten(1)  # (N, 784), a view
        self.mean = flat.double().mean(0)
        # The principal directions are the eigenvectors of the 784 x 784 covariance,
        # largest eigenvalue first (cheaper than an SVD of the N x 784 data). It is
        # summed in float64 over chunks, so the data are never copied whole.
        scatter = torch.zeros(flat.shape[1], flat.shape[1], dtype=torch.float64)
        for chunk in flat.split(8192):
            c = chunk.double() - self.mean
            scatter += c.T @ c
        _, vecs = torch.linalg.eigh(scatter)  # eigenvalues in ascending order
        self.components = vecs.flip(1)[:, : self.n_components].T.contiguous()  # (d, 784)
        return self

    def top(self, d: int) -> "PCA":
        """The same fit restricted to its first ``d`` components (no refit: the directions are nested)."""
        if not 1 <= d <= self.n_components:
            raise ValueError(f"d must be in [1, {self.n_components}], got {d}")
        pca = PCA(d)
        pca.mean, pca.components = self.mean, self.components[:d]
        return pca

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates ``(N, d)`` on the principal directions."""
        return ((x.flatten(1).double() - self.mean) @ self.components.T).float()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Projection back to image space, clipped to [0, 1], ``(N, 1, 28, 28)``."""
        flat = self.embed(x).double() @ self.components + self.mean
        return flat.clamp(0, 1).float().view(-1, *x.shape[1:])


class CodePlane:
    """A 2-D view of D-dimensional codes, for the book's scatter and grid figures.

    With D = 2 it is the identity. With D > 2 it is the plane of the codes' top two principal
    directions: :meth:`project` gives the coordinates of codes in that plane, and :meth:`lift` maps
    plane points back to codes (the mean plus the point on the plane), so that a grid in the plane can be
    decoded. The figures say which one they show through :attr:`axis_labels`.
    """

    def __init__(self, z: torch.Tensor):
        check_codes(z)
        z = z.detach().float().cpu()
        self.dim = z.shape[1]
        if self.dim < 2:
            raise ValueError(f"a 2-D view needs codes of at least 2 dimensions, got {self.dim}")
        self.mean = z.mean(0) if self.dim > 2 else torch.zeros(2)
        if self.dim > 2:
            _, vecs = torch.linalg.eigh(torch.cov(z.T))  # ascending eigenvalues
            self.basis = vecs.flip(1)[:, :2].T.contiguous()  # (2, D)
        else:
            self.basis = torch.eye(2)

    @property
    def projected(self) -> bool:
        return self.dim > 2

    @property
    def axis_labels(self) -> tuple[str, str]:
        if self.projected:
            return (f"PC 1 of the {self.dim}-D codes", f"PC 2 of the {self.dim}-D codes")
        return ("$z_1$", "$z_2$")

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Plane coordinates ``(N, 2)`` of codes ``(N, D)``."""
        if z.shape[1] != self.dim:
            raise ValueError(f"this plane was fitted to {self.dim}-D codes, got {z.shape[1]}-D")
        return (z.detach().float().cpu() - self.mean) @ self.basis.T

    def lift(self, p: torch.Tensor) -> torch.Tensor:
        """Codes ``(N, D)`` of plane points ``(N, 2)``."""
        return self.mean + p.float() @ self.basis


def claim_ranks(z: torch.Tensor, y: torch.Tensor, claims: list[tuple[int, int]]) -> list[int]:
    """For each claim ``(a, b)`` ("b is among the nearest classes of a"), the rank of class ``b`` among the
    other classes of ``a``, 1 = nearest, measured between class centroids.

    ``z``: codes ``(N, D)`` (or any flattened data, e.g. pixels ``(N, 784)``); ``y``: labels ``(N,)``;
    ``claims``: pairs of class indices (lists of two work too, as papermill passes them). Chapter 3 tests
    the claims over several trainings with this.
    """
    dist = distance_matrix(centroids(z, y))  # (K, K)
    ranks = []
    for a, b in claims:
        if a == b:
            raise ValueError(f"a claim needs two different classes, got ({a}, {b})")
        ranks.append(neighbour_rank(dist, int(a), int(b)))
    return ranks


def style_alignment(z: torch.Tensor, y: torch.Tensor, style: torch.Tensor,
                    n_classes: int | None = None, axis: int = 0) -> torch.Tensor:
    """Per class, how well a code's position along its class's main axis follows a style measure.

    For each class ``k``, the codes of class ``k`` are projected on their first principal direction (the
    long axis of the class's cluster, its "arm"), and the result is the absolute Pearson correlation
    between that position and ``style`` (one number per image, e.g. :func:`genvae.book.morpho.thickness`).
    ``z``: codes ``(N, D)``; ``y``: labels ``(N,)``; ``style``: ``(N,)``. Returns ``(K,)`` in [0, 1]
    (0 for a class whose codes or style values do not vary). ``axis=1`` uses the second principal
    direction instead (the cluster's short axis in 2-D), a control for the long axis.

        >>> z = torch.tensor([[0., 0.], [1., 0.1], [2., 0.], [3., 0.1]])
        >>> style_alignment(z, torch.zeros(4, dtype=torch.long), torch.tensor([1., 2., 3., 4.])).round(decimals=2)
        tensor([1.], dtype=torch.float64)
    """
    check_codes(z, name="codes z")
    check_labels(y, batch=len(z), name="labels y")
    style = torch.as_tensor(style).flatten()
    check_count(len(style), "number of style values")
    if len(style) != len(z):
        raise ValueError(f"{len(style)} style values for {len(z)} codes")
    n_classes = n_classes or int(y.max()) + 1
    out = torch.zeros(n_classes, dtype=torch.float64)
    for k in range(n_classes):
        zk, sk = z[y == k].double(), style[y == k].double()
        if len(zk) < 3 or axis >= min(zk.shape):
            continue
        zk = zk - zk.mean(0)
        direction = torch.linalg.svd(zk, full_matrices=False).Vh[axis]  # axis 0: the class's long axis
        pos, sk = zk @ direction, sk - sk.mean()
        denom = pos.norm() * sk.norm()
        out[k] = (pos @ sk).abs() / denom if denom > 0 else 0.0
    return out


def grid_codes(n: int, extent: tuple[float, float, float, float] = (-3, 3, -3, 3),
               plane: CodePlane | None = None) -> torch.Tensor:
    """The codes ``(n*n, D)`` of an ``n`` x ``n`` grid over ``extent`` = (x0, x1, y0, y1), in reading order.

    Row by row from the top (largest second coordinate) down, left to right in each row: the order in
    which :func:`genvae.book.plots.latent_grid` tiles their decodings. Without ``plane`` the grid is 2-D codes;
    with one (:class:`CodePlane`) it is the plane's points lifted to D-dimensional codes.
    """
    x0, x1, y0, y1 = extent
    xs = torch.linspace(x0, x1, n)
    ys = torch.linspace(y1, y0, n)  # top row = largest z2, as on a plot
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)  # (n*n, 2) as (z1, z2)
    return grid if plane is None else plane.lift(grid)


def class_borders(pred: torch.Tensor, n: int) -> torch.Tensor:
    """Which cells of an ``n`` x ``n`` grid lie on a border between classes: ``(n*n,)`` booleans.

    ``pred`` ``(n*n,)`` holds one class per grid cell in :func:`grid_codes`' reading order. A cell is on a
    border when one of its four neighbours (up, down, left, right) has another class.
    """
    check_count(n, "n")
    pred = torch.as_tensor(pred).reshape(n, n)
    border = torch.zeros(n, n, dtype=torch.bool)
    rows, cols = pred[1:] != pred[:-1], pred[:, 1:] != pred[:, :-1]  # (n-1, n), (n, n-1)
    border[1:] |= rows
    border[:-1] |= rows
    border[:, 1:] |= cols
    border[:, :-1] |= cols
    return border.reshape(-1)


@torch.no_grad()
def encode_gaussian(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A VAE encoder's q(z|x) for every image: ``mu, logvar``, each ``(N, D)``, on the CPU.

    Together the N Gaussians make the *aggregate posterior* q(z) = (1/N) sum_n q(z | x_n), the
    distribution of codes that the decoder meets in training, which the prior N(0, I) need not match
    (:func:`genvae.book.posterior.aggregate_log_density`).
    """
    check_images(x, values=True)
    return batched(model, model.encode, x, batch_size=batch_size)  # (mu, logvar)



class CodeCache:
    """The codes of one image set under many trained models, each encoded once.

    A chapter that draws the same model's codes in several figures asks ``codes_of(trained)`` each
    time; the first call encodes (the posterior mean for a VAE, see :func:`encode`), later calls
    return the kept tensor. Models are told apart by their cache name (``TrainedModel.name``), which
    holds every setting that changes the weights (kind, latent size, beta, gamma, seed).

        >>> codes_of = CodeCache(mnist.x_test)  # doctest: +SKIP
        >>> z = codes_of(experiments.vae(2).load())  # doctest: +SKIP  (10000, 2)
    """

    def __init__(self, x: torch.Tensor):
        self.x = x  # (N, C, H, W) the images every model encodes
        self._codes: dict[str, torch.Tensor] = {}

    def __call__(self, trained) -> torch.Tensor:
        """``(N, D)`` codes of :attr:`x` under ``trained.model``, encoded on the first call for its name."""
        if trained.name not in self._codes:
            self._codes[trained.name] = encode(trained.model, self.x)
        return self._codes[trained.name]

    def __len__(self) -> int:
        return len(self._codes)

