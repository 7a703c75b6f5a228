"""Steps the browser suites share: logging in through the console's form."""

from playwright.sync_api import Page


def log_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
