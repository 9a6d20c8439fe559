"""A tqdm progress bar (a widget in a notebook, a line on a terminal) fed by the engine's
callback, which it calls at most ten times a second from the training thread with the GIL held."""


class ProgressBar:
    def __init__(self, enabled, desc):
        self.bar = None
        self.desc = desc
        self.enabled = enabled

    def __call__(self, steps_done, steps_total, sample_tokens, elapsed, loss):
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=steps_total, desc=self.desc, unit="step", leave=True)
        self.bar.update(steps_done - self.bar.n)
        rate = sample_tokens / elapsed if elapsed > 0 else 0.0
        self.bar.set_postfix(loss=f"{loss:.6f}", tokens_per_s=f"{rate:.3g}", refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
