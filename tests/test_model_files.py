"""Model files are loaded only from the platform's data root."""

import pytest

from fvc_assets.predict import fold_folders


def _fold_dirs(train_dir, model="logistic_regression"):
    for k in range(5):
        folder = train_dir / model / f"fold_{k}"
        folder.mkdir(parents=True)
        (folder / "model.json").write_text("{}")
        (folder / "model.joblib").write_bytes(b"inside")
    return train_dir / model


def _link_outside(model_file, tmp_path) -> None:
    """Replace a model file with a symlink to a file outside the data root."""
    outside = tmp_path / "elsewhere.joblib"
    outside.write_bytes(b"not ours")
    model_file.unlink()
    model_file.symlink_to(outside)


def test_fold_models_inside_the_data_root_are_accepted(tmp_path):
    root = tmp_path / "data"
    _fold_dirs(root / "train")
    assert [f.name for f in fold_folders(root / "train", "logistic_regression", root)] == [
        f"fold_{k}" for k in range(5)]


def test_a_model_file_linked_from_outside_the_data_root_is_refused(tmp_path):
    root = tmp_path / "data"
    model_dir = _fold_dirs(root / "train")
    _link_outside(model_dir / "fold_3" / "model.joblib", tmp_path)
    with pytest.raises(PermissionError, match="outside the data root"):
        fold_folders(root / "train", "logistic_regression", root)


def test_a_model_missing_a_fold_is_not_averaged_over_fewer_folds(tmp_path):
    root = tmp_path / "data"
    model_dir = _fold_dirs(root / "train")
    (model_dir / "fold_4" / "model.json").unlink()
    with pytest.raises(SystemExit, match="not trained on every fold"):
        fold_folders(root / "train", "logistic_regression", root)


def test_ensemble_members_are_held_to_the_data_root_too(tmp_path):
    from fvc_assets.predict import FoldModels

    root = tmp_path / "data"
    member = _fold_dirs(root / "train")
    _link_outside(member / "fold_0" / "model.joblib", tmp_path)
    with pytest.raises(PermissionError, match="outside the data root"):
        FoldModels(root / "train", root, context=None).model("logistic_regression", "fold_0")
