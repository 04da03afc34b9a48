"""`moor completion bash|zsh|fish`: the shell completion script, from click's own completion support."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

PROGRAM = "moor"
COMPLETE_VAR = "_MOOR_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
LOADING = {
    "bash": 'eval "$(moor completion bash)"   # in ~/.bashrc',
    "zsh": 'eval "$(moor completion zsh)"    # in ~/.zshrc',
    "fish": "moor completion fish > ~/.config/fish/completions/moor.fish",
}


@click.command(epilog="\b\n" + "\n".join(LOADING.values()))
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish)."""
    root = click.get_current_context().find_root().command
    completer = get_completion_class(shell)
    assert completer is not None  # every name in SHELLS is one of click's shells
    script = completer(root, {}, PROGRAM, COMPLETE_VAR).source()
    click.echo(script)
