def show(r, label):
    print(f"=== {label}: exit={r.exit_code}\n--stdout--\n{r.stdout}--stderr--\n{r.stderr}")

def test_explore(admin_cli, tmp_path, empty_db_url, monkeypatch):
    cli = admin_cli
    show(cli(), "noargs")
    show(cli("org"), "org noargs")
    show(cli("db", "upgrade", "nonsense"), "upgrade nonsense")
    show(cli("db", "downgrade", "nonsense"), "downgrade nonsense")
    show(cli("db", "downgrade", "base"), "downgrade base")
    show(cli("db", "current"), "current")
    show(cli("db", "history", "--format", "csv"), "history")
    show(cli("org", "list"), "org list after downgrade")
    show(cli("db", "upgrade"), "upgrade")
    show(cli("--db", empty_db_url, "init"), "init empty")
    show(cli("--db", empty_db_url, "db", "current"), "current empty")
    show(cli("org", "list", "-o", str(tmp_path / "nodir" / "x.csv")), "bad -o")
    show(cli("--db", "postgresql://noc:p@ss@db.example/noc", "config", "show"), "at pw")
    show(cli("--db", "postgresql://noc@db.example/noc?password=zzz", "config", "show"), "query pw")
    cfg = tmp_path / "c.toml"
    cfg.write_text('pin_token = 1234\n[credentials]\nsmtp = "plainpw"\n[notify.webhook]\nurl = "https://u:hookpw@hooks.example/x"\ntoken = "tok"\n')
    show(cli("config", "show", env={"NOC_CONFIG": str(cfg)}), "cfg")
    show(cli("user", "grant", "root", "noc:view", "--client", "A", "--site", "B"), "both")
    show(cli("-v", "--as", "nobody", "org", "list"), "-v")
    show(cli("--version"), "version")
