"""The man pages the build generated: each renders with groff and man without a warning, names
every option its program's --help names (and hearthd.conf(5) every key of the config table, in
its section), so a page can never lag behind its program. Run by ctest with the build directory
as argument."""

import os
import re
import subprocess
import sys
import unittest

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else 'build'
PAGES = {'hearthd.8': 'hearthd', 'hearthctl.8': 'hearthctl', 'hearth-bench.1': 'hearth-bench',
         'hearth.1': 'hearth'}
OPTION = re.compile(r'(?<![\w-])--[a-z][a-z-]*')


def page_path(page):
    return os.path.join(BUILD, 'man', page)


def render(page):
    """The page as man shows it (plain text, no hyphenation), and what it said on stderr."""
    env = dict(os.environ, MANWIDTH='80', LC_ALL='C.UTF-8', MAN_KEEP_FORMATTING='')
    r = subprocess.run(['man', '--warnings', '-E', 'UTF-8', '-l', page_path(page)], env=env,
                       capture_output=True, text=True, timeout=60)
    text = re.sub(r'.\x08', '', r.stdout)
    return r.returncode, text.replace('\u2010', '-').replace('\u2011', '-'), r.stderr


class ManPagesTest(unittest.TestCase):
    def pages(self):
        out = [p for p in PAGES if os.path.exists(page_path(p))] + ['hearthd.conf.5']
        # hearth(1) exists when the terminal client was built (libedit).
        return out

    def test_groff_and_man_render_without_warnings(self):
        for page in self.pages():
            with self.subTest(page=page):
                r = subprocess.run(['groff', '-man', '-ww', '-z', page_path(page)],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual((r.returncode, r.stderr), (0, ''))
                rc, text, err = render(page)
                self.assertEqual((rc, err), (0, ''))
                self.assertRegex(text, r'\nNAME\n')

    def test_every_option_of_help_is_in_the_page(self):
        for page, prog in PAGES.items():
            binary = os.path.join(BUILD, prog)
            if not os.path.exists(page_path(page)):
                self.assertFalse(os.path.exists(binary), '%s built without its page' % prog)
                continue
            with self.subTest(page=page):
                help_text = subprocess.run([binary, '--help'], capture_output=True, text=True,
                                           timeout=30).stdout
                options = set(OPTION.findall(help_text))
                self.assertGreater(len(options), 3, help_text)
                _, text, _ = render(page)
                missing = sorted(o for o in options if o not in set(OPTION.findall(text)))
                self.assertEqual(missing, [])

    def test_every_config_key_is_in_hearthd_conf_5(self):
        doc = subprocess.run([os.path.join(BUILD, 'hearthd'), '--config-doc'],
                             capture_output=True, text=True, timeout=30).stdout
        keys = re.findall(r'^\| `([a-z0-9_.]+)`', doc, re.M)
        self.assertGreater(len(keys), 50)
        _, text, _ = render('hearthd.conf.5')
        # "[c2s]" opens a section; "       port (integer; ...)" names a key in it.
        found, section = set(), None
        for line in text.split('\n'):
            m = re.match(r'\s+\[([a-z0-9_]+)\]$', line)
            if m:
                section = m.group(1)
                continue
            m = re.match(r'\s{7}([a-z0-9_]+) \(', line)
            if m and section:
                found.add('%s.%s' % (section, m.group(1)))
        self.assertEqual(sorted(set(keys) - found), [])
        self.assertEqual(sorted(found - set(keys)), [])


if __name__ == '__main__':
    unittest.main(verbosity=2)
