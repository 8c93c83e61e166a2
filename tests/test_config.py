"""Configuration: TOML file + PLUMLINE_* environment, one clear error per bad value."""

import pytest

from agent.config import ConfigError, config_path, data_home, load_config


def test_defaults_without_a_file(plumline_home):
    config = load_config()
    assert config.model.name == "embedded"
    assert config.sandbox.backend == "auto"
    assert config.home == plumline_home
    assert config.store_path == plumline_home / "plumline.db"


def test_file_values_are_read(plumline_home, tmp_path):
    (tmp_path / "config.toml").write_text('[model]\nname = "/models/x"\n[sandbox]\nbackend = "process"\ntimeout_s = 2\n')
    config = load_config()
    assert config.model.name == "/models/x"
    assert config.sandbox.backend == "process"
    assert config.sandbox.timeout_s == 2.0
    assert config.sources["sandbox.backend"] == "file"


def test_environment_overrides_file(plumline_home, tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('[sandbox]\nbackend = "process"\n')
    monkeypatch.setenv("PLUMLINE_SANDBOX_BACKEND", "docker")
    monkeypatch.setenv("PLUMLINE_PRIVACY_LOGGING", "false")
    monkeypatch.setenv("PLUMLINE_PRIVACY_EXCLUDE", "*.env, secrets/*")
    config = load_config()
    assert config.sandbox.backend == "docker"
    assert config.sources["sandbox.backend"] == "env"
    assert config.privacy.logging is False
    assert config.privacy.exclude == ["*.env", "secrets/*"]


@pytest.mark.parametrize(
    "toml, fragment",
    [
        ('[sandbox]\nbackend = "vm"\n', "sandbox.backend"),
        ('[sandbox]\nworkers = "many"\n', "sandbox.workers"),
        ('[model]\nbackend = "onnx"\n', "allowed: auto, transformers, llamacpp, vllm"),
        ('[model]\nnmae = "x"\n', "unknown key(s) nmae"),
        ('[modle]\nname = "x"\n', "unknown table(s) modle"),
        ("[model\nname=", "cannot parse config file"),
        ('model = 3\n', "must be a table"),
    ],
)
def test_invalid_config_names_the_key(plumline_home, tmp_path, toml, fragment):
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config()
    assert fragment in str(err.value)


def test_bad_environment_value_names_the_variable(plumline_home, monkeypatch):
    monkeypatch.setenv("PLUMLINE_MODEL_CONTEXT_TOKENS", "lots")
    with pytest.raises(ConfigError, match="PLUMLINE_MODEL_CONTEXT_TOKENS"):
        load_config()


def test_xdg_locations(monkeypatch, tmp_path):
    monkeypatch.delenv("PLUMLINE_CONFIG", raising=False)
    monkeypatch.delenv("PLUMLINE_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert config_path() == tmp_path / "cfg" / "plumline" / "config.toml"
    assert data_home() == tmp_path / "data" / "plumline"
