import {cpSync, existsSync, readdirSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {AuditLogsError, ExitCode} from '../errors.js'

/** The Django app `scaffold django` copies: a directory of templates/django/ (the package, its README inside). */
export const DJANGO_TEMPLATES = fileURLToPath(new URL('../../templates/django', import.meta.url))
export const DJANGO_APP = 'audit_logs_django'

/** What a settings module needs, in the order a user adds them. */
export const DJANGO_SETTINGS = {
  installedApps: `INSTALLED_APPS += ['${DJANGO_APP}']`,
  middleware: `MIDDLEWARE += ['${DJANGO_APP}.middleware.AuditMiddleware']  # after AuthenticationMiddleware`,
} as const

export type DjangoScaffold = {dir: string; app: string; files: string[]; settings: typeof DJANGO_SETTINGS}

/** Bytecode a Python run may have left next to the templates is not part of them. */
const copied = (name: string) => name !== '__pycache__' && !name.endsWith('.pyc')

/** The template's files, relative to templates/django/, sorted (pure of the destination). */
export function djangoTemplateFiles(root = DJANGO_TEMPLATES): string[] {
  return readdirSync(root, {recursive: true, withFileTypes: true})
    .filter((e) => e.isFile() && path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).every(copied))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort()
}

/** Copies the app into `dir`; an existing app directory is refused unless `force` (then its files are replaced). */
export function writeDjangoApp(dir: string, force: boolean, root = DJANGO_TEMPLATES): DjangoScaffold {
  const full = path.resolve(dir)
  const target = path.join(full, DJANGO_APP)
  if (existsSync(target) && !force)
    throw new AuditLogsError(`${target} already exists; not overwriting it: pass --force to replace its files`, {
      exit: ExitCode.usage,
      suggestions: [`audit-logs scaffold django --force${dir === '.' ? '' : ` --dir ${dir}`}`, 'or --dir DIR to write it elsewhere'],
    })
  cpSync(root, full, {recursive: true, force: true, filter: (source) => copied(path.basename(source))})
  return {dir: full, app: target, files: djangoTemplateFiles(root), settings: DJANGO_SETTINGS}
}
