"""`proxyctl nft` output against the real nft and kernel (the command-line contract itself is
covered in test_proxyctl_cli.py)."""

from conftest import EXAMPLE_POLICY, PROXYCTL, run


def test_proxyctl_nft_of_example_policy_passes_nft_check_in_fresh_namespace(scratch_netns):
    """(i) `proxyctl nft policy.example.toml` is accepted by `nft -c -f -` (the kernel is asked,
    hence a throwaway namespace), and it also loads for real there, making exactly the
    `ringfence` table with its three chains."""
    script = run(PROXYCTL, "nft", EXAMPLE_POLICY).stdout
    assert "table inet ringfence" in script

    checked = run("ip", "netns", "exec", scratch_netns, "nft", "-c", "-f", "-", input=script, check=False)
    assert checked.returncode == 0, f"nft -c rejected proxyctl's script:\n{checked.stderr}\n{script}"
    assert run("ip", "netns", "exec", scratch_netns, "nft", "list", "tables").stdout.strip() == ""

    run("ip", "netns", "exec", scratch_netns, "nft", "-f", "-", input=script)
    tables = run("ip", "netns", "exec", scratch_netns, "nft", "list", "tables").stdout.split("\n")
    assert [t for t in tables if t] == ["table inet ringfence"]
    listing = run("ip", "netns", "exec", scratch_netns, "nft", "list", "table", "inet", "ringfence").stdout
    for chain in ("fence", "divert", "shield"):
        assert f"chain {chain} {{" in listing
    # Applying the same script again replaces the table (the create/delete/define idiom).
    run("ip", "netns", "exec", scratch_netns, "nft", "-f", "-", input=script)

