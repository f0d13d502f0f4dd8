import {expect} from 'chai'
import {type RunningViewer, loginCookie, startViewer, viewerDatabase} from '../helpers/ui.js'

describe('audit-logs ui (HTTP)', function () {
  let db: Awaited<ReturnType<typeof viewerDatabase>>
  let viewer: RunningViewer

  before(async () => {
    db = await viewerDatabase()
    viewer = await startViewer(db.env)
  })
  after(async () => {
    await viewer?.stop()
    await db?.drop()
  })

  it('sends an anonymous visitor to the login page, and a logged-in one to the records', async () => {
    const anon = await fetch(`${viewer.url}/logs/request`, {redirect: 'manual'})
    expect(anon.status).to.equal(303)
    expect(anon.headers.get('location')).to.equal('/login?next=%2Flogs%2Frequest')
    const cookie = await loginCookie(viewer.url)
    const page = await fetch(`${viewer.url}/logs/request`, {headers: {cookie}})
    expect(page.status).to.equal(200)
    expect(await page.text()).to.include('No records match.')
  })
})
