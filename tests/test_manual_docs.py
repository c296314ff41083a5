"""The Chinese manuals (docs/zh_CN/) hold together, without a browser:
every image a manual shows is one the browser test takes
(tests/manualshots.py) and is in docs/zh_CN/images/; every relative link
to another file leads to one; the index links every manual; and every
screenshot taken is shown by some manual (none is taken for nothing)."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manualshots  # noqa: E402

DOCS = manualshots.DOCS
# ![alt](target) and [text](target); the target up to a space or ")"
IMAGE = re.compile(r'!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HTML_IMAGE = re.compile(r'<img\s[^>]*src="([^"]+)"')


def manuals():
    for folder, _, files in os.walk(DOCS):
        for name in sorted(files):
            if name.endswith('.md'):
                yield os.path.join(folder, name)


def targets(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    # links inside code blocks are examples, not links
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    images = IMAGE.findall(text) + HTML_IMAGE.findall(text)
    return images, LINK.findall(text)


def local(target):
    return not re.match(r'^[a-z][a-z0-9+.-]*:', target) and not (
        target.startswith('#'))


def test_manuals_exist():
    paths = {os.path.relpath(p, DOCS) for p in manuals()}
    for role in ['clerk', 'finance', 'manager', 'maint', 'tenant']:
        assert f'{role}.md' in paths          # the user manual
        assert f'training/{role}.md' in paths  # its one-page training sheet
    assert {'README.md', 'maintenance.md', 'integrator.md'} <= paths


def test_images_are_the_browser_tests():
    problems = []
    shown = set()
    for path in manuals():
        images, _ = targets(path)
        for target in images:
            if not local(target):
                problems.append(f'{path}: remote image {target}')
                continue
            file = os.path.normpath(os.path.join(os.path.dirname(path),
                    target.split('#')[0]))
            name, ext = os.path.splitext(os.path.basename(file))
            if (os.path.dirname(file) != manualshots.IMAGES
                    or ext != manualshots.EXT
                    or name not in manualshots.SHOTS):
                problems.append(f'{path}: {target} is not a screenshot '
                    'of tests/manualshots.py')
            elif not os.path.exists(file):
                problems.append(f'{path}: {target} is missing (run make '
                    'manual-images)')
            shown.add(name)
    assert not problems, '\n'.join(problems)
    assert set(manualshots.SHOTS) - shown == set(), (
        'screenshots no manual shows')


def test_links_lead_somewhere():
    problems = []
    for path in manuals():
        _, links = targets(path)
        for target in links:
            if not local(target):
                continue
            file = os.path.normpath(os.path.join(os.path.dirname(path),
                    target.split('#')[0]))
            if not os.path.exists(file):
                problems.append(f'{path}: broken link {target}')
    assert not problems, '\n'.join(problems)


def test_index_links_every_manual():
    index = os.path.join(DOCS, 'README.md')
    _, links = targets(index)
    linked = {os.path.normpath(os.path.join(DOCS, t.split('#')[0]))
        for t in links if local(t)}
    missing = [p for p in manuals() if p != index and p not in linked]
    assert not missing, missing
    with open(os.path.join(manualshots.ROOT, 'README.md'),
            encoding='utf-8') as f:
        assert 'docs/zh_CN/README.md' in f.read()


def test_checker_catches_a_missing_image(tmp_path):
    "The check itself: a link to a screenshot that does not exist fails"
    page = tmp_path / 'x.md'
    page.write_text('![图](images/nothing.jpg) [a](nowhere.md)',
        encoding='utf-8')
    images, links = targets(str(page))
    assert images == ['images/nothing.jpg'] and links == ['nowhere.md']
    assert 'nothing' not in manualshots.SHOTS
